"""Microsoft Entra ID identities made for tests: the key an `azure` provider is configured with
(a service principal's JSON, a workload identity's, a managed identity's words), their
registration with the fake upstream's token endpoints, which then grant them tokens recorded
under their labels, and the azure provider's config around them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import orjson

from router_service.fake_upstream import FakeUpstream

__all__ = [
    "DEPLOYMENT",
    "TENANT",
    "ServicePrincipalKey",
    "WorkloadIdentityKey",
    "authorizations",
    "azure_config",
    "client_id_of",
    "entra_keys",
    "entra_settings",
    "sdk_round_trip",
    "service_principal",
]

DEPLOYMENT = "gpt-4o-prod"

TENANT = "2f4a9f3c-7a1d-4c6e-9b7e-5d0c1e8a6b42"


@dataclass(frozen=True)
class ServicePrincipalKey:
    label: str
    tenant_id: str
    client_id: str
    client_secret: str

    def key_json(self) -> str:
        fields = {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        return orjson.dumps(fields).decode()

    def register(self, fake: FakeUpstream) -> None:
        fake.state.entra.register(self.tenant_id, self.client_id, self.client_secret, self.label)


@dataclass(frozen=True)
class WorkloadIdentityKey:
    """A workload identity of TENANT whose federated token is in `token_file`."""

    label: str
    client_id: str
    token_file: Path

    def key_json(self) -> str:
        fields = {
            "tenant_id": TENANT,
            "client_id": self.client_id,
            "federated_token_file": str(self.token_file),
        }
        return orjson.dumps(fields).decode()

    def rotate(self, fake: FakeUpstream, assertion: str) -> None:
        """The kubelet's rotation: a new token in the file, the only one Entra now trusts."""
        self.token_file.write_text(assertion)
        fake.state.entra.register_federated(TENANT, self.client_id, assertion, self.label)


def client_id_of(label: str) -> str:
    """The client id (a GUID) the identity `label` has."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"switchboard-test/{label}"))


def service_principal(label: str) -> ServicePrincipalKey:
    """A principal of TENANT; its ids and secret follow from the label (a secret shaped as
    Entra's are: 40 characters with a `~`)."""
    client_id = client_id_of(label)
    secret = f"Xy8Q~{uuid.uuid5(uuid.NAMESPACE_DNS, label).hex[:35]}"
    return ServicePrincipalKey(label, TENANT, client_id, secret)


def entra_keys(fake: FakeUpstream, labels: list[str]) -> list[str]:
    """Service principal keys for `labels`, trusted by `fake`'s token endpoint: the fake
    records the calls made with their tokens under the labels."""
    principals = [service_principal(label) for label in labels]
    for principal in principals:
        principal.register(fake)
    return [principal.key_json() for principal in principals]


def entra_settings(fake: FakeUpstream) -> dict[str, str]:
    """An azure provider's settings that send its token requests to `fake`."""
    return {"authority_host": fake.url}


def azure_config(fake: FakeUpstream, keys: list[str], **provider: Any) -> dict[str, Any]:
    """A router's config: provider `az` (kind azure, its token and identity endpoints the
    fake's IMDS and Entra), `backup` (openai); models `gpt` (az's DEPLOYMENT) and `chain` (az's,
    then backup's)."""
    return {
        "providers": {
            "az": {
                "kind": "azure",
                "base_url": fake.url,
                "authority_host": fake.url,
                "identity_endpoint": f"{fake.url}/metadata/identity/oauth2/token",
                "keys": keys,
                **provider,
            },
            "backup": {"kind": "openai", "base_url": fake.base_url, "keys": ["k-backup"]},
        },
        "models": {
            "gpt": {"deployments": [{"provider": "az", "model": DEPLOYMENT}]},
            "chain": {
                "deployments": [
                    {"provider": "az", "model": DEPLOYMENT},
                    {"provider": "backup", "model": "m-backup"},
                ]
            },
        },
        "server": {"port": 0},
    }


def authorizations(fake: FakeUpstream) -> list[str]:
    """The `Authorization` header of each call the fake's Azure deployment got."""
    return [r.headers.get("Authorization", "") for r in fake.state.calls(model=DEPLOYMENT)]


async def sdk_round_trip(edge_url: str) -> None:
    """What an app sees through the edge of an azure deployment named `gpt` (the fake echoes):
    a chat answer, a stream and an embedding, with the real `openai` SDK."""
    async with openai.AsyncOpenAI(
        base_url=f"{edge_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        completion = await sdk.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "hello there"}]
        )
        streamed = await sdk.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "one two"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in streamed if c.choices])
        vectors = await sdk.embeddings.create(model="gpt", input=["a b c"])
    assert completion.choices[0].message.content == "Echo: hello there"
    assert text == "Echo: one two"
    assert len(vectors.data) == 1
