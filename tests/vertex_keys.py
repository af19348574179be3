"""Google service account keys made for tests: an RSA key pair generated here (no private key
is committed), the key file's JSON as Google issues it, and its registration with the fake
upstream's token endpoint, which then trusts the public half."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from router_service.fake_upstream import FakeUpstream

__all__ = [
    "PROJECT",
    "ServiceAccountKey",
    "express_key",
    "express_keys",
    "service_account",
    "vertex_keys",
]

PROJECT = "switchboard-test"


@functools.cache
def _key_pair(label: str) -> rsa.RSAPrivateKey:
    # One pair per label for the session: generating 2048-bit keys takes tens of milliseconds.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class ServiceAccountKey:
    label: str
    client_email: str
    key_id: str
    private_key: rsa.RSAPrivateKey

    def key_json(self, token_uri: str) -> str:
        """The key file's text, as the Google Cloud console downloads it."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return orjson.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": self.key_id,
                "private_key": pem,
                "client_email": self.client_email,
                "client_id": "100000000000000000000",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri,
            }
        ).decode()

    def register(self, fake: FakeUpstream) -> None:
        fake.state.google.register(
            self.client_email, self.private_key.public_key(), self.key_id, self.label
        )


def service_account(label: str) -> ServiceAccountKey:
    return ServiceAccountKey(
        label=label,
        client_email=f"{label}@{PROJECT}.iam.gserviceaccount.com",
        key_id=f"kid-{label}",
        private_key=_key_pair(label),
    )


def vertex_keys(fake: FakeUpstream, labels: list[str]) -> list[str]:
    """Service account keys for `labels`, trusted by `fake`'s token endpoint: the fake
    records the calls made with their tokens under the labels."""
    accounts = [service_account(label) for label in labels]
    for account in accounts:
        account.register(fake)
    return [account.key_json(f"{fake.url}/token") for account in accounts]


def express_key(label: str) -> str:
    """A Vertex AI express mode API key's look (`AQ.` and the key), made up for `label`."""
    return f"AQ.Ab8RN6Lfake{label.replace('-', '')}ExpressModeKey0000"


def express_keys(fake: FakeUpstream, labels: list[str]) -> list[str]:
    """Express mode API keys for `labels`: the fake records the calls made with them under
    the labels."""
    keys = [express_key(label) for label in labels]
    for key, label in zip(keys, labels, strict=True):
        fake.state.google.register_api_key(key, label)
    return keys
