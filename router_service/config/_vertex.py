"""What a `vertex` provider's pool key is: a Google service account key, an express mode API
key, or a plain access token.

A service account key is the JSON file Google issues (`type: service_account`, `client_email`,
`private_key`, `private_key_id`, `token_uri`), given as its text (usually `${VERTEX_SA_JSON}`) or
as `file:/path/to/key.json`; the router exchanges it for short-lived OAuth2 access tokens
(`providers/_google_auth.py`). An express mode API key (Vertex AI in express mode: a Google
Cloud API key, `AIza…`, or an API key bound to a service account, `AQ.…`) is sent as it is in
`x-goog-api-key`, to express mode's URLs (no project, no location). Anything else is an access
token, sent as it is (one from `gcloud auth print-access-token`: it expires within the hour,
and is then the key's failure).

Signing the token request (RS256) needs the `cryptography` package, the `vertex` extra: it is
imported here only when a service account key is configured, so a router without one never
loads it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import orjson

from router_service.config._key_files import key_file, key_text

__all__ = [
    "DEFAULT_TOKEN_URI",
    "EXPRESS_KEY_PREFIXES",
    "AccessToken",
    "ExpressKey",
    "ServiceAccount",
    "VertexCredential",
    "key_file",
    "parse_vertex_key",
    "signing_key",
]

# Where Google's service account keys send their token requests (the key's own `token_uri`).
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
# How an express mode API key begins: a Google Cloud API key's `AIza`, or `AQ.` for an API key
# bound to a service account. OAuth2 access tokens begin otherwise (`ya29.`).
EXPRESS_KEY_PREFIXES = ("AIza", "AQ.")
_NEEDS_EXTRA = (
    "a service account key is signed with the `cryptography` package, which is not installed: "
    "pip install 'switchboard[vertex]'"
)


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The fields of a service account key the token exchange uses. `repr` names the account
    only: the private key never reaches a log or an error."""

    client_email: str
    private_key_id: str
    token_uri: str
    private_key: str

    def __repr__(self) -> str:
        return f"ServiceAccount({self.client_email!r})"


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An OAuth2 access token given as the key: sent as `Authorization: Bearer` as it is."""

    token: str

    def __repr__(self) -> str:
        return "AccessToken(…)"


@dataclass(frozen=True, slots=True)
class ExpressKey:
    """A Vertex AI express mode API key: sent in `x-goog-api-key`, never exchanged."""

    key: str

    def __repr__(self) -> str:
        return "ExpressKey(…)"


VertexCredential = ServiceAccount | AccessToken | ExpressKey


def parse_vertex_key(secret: str) -> VertexCredential:
    """The credential a configured key is. Raises ValueError with a message that quotes
    nothing of the key (a file's path at most)."""
    path = key_file(secret)
    text = key_text(secret, "service account key")
    if text.startswith("{"):
        return _service_account(text)
    if text.startswith(EXPRESS_KEY_PREFIXES):
        return ExpressKey(text)
    if path is not None:
        raise ValueError(f"{path} is neither a service account key (JSON) nor an API key")
    return AccessToken(text)


def _service_account(text: str) -> ServiceAccount:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("a service account key must be valid JSON") from None
    if not isinstance(data, dict) or data.get("type") != "service_account":
        raise ValueError('not a service account key (its "type" is not "service_account")')
    fields: dict[str, str] = {}
    for name in ("client_email", "private_key", "private_key_id"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"the service account key has no {name}")
        fields[name] = value
    token_uri = data.get("token_uri", DEFAULT_TOKEN_URI)
    if not isinstance(token_uri, str) or not token_uri.startswith(("https://", "http://")):
        raise ValueError("the service account key's token_uri is not an http(s) URL")
    return ServiceAccount(token_uri=token_uri, **fields)


def signing_key(account: ServiceAccount) -> object:
    """The account's RSA private key, loaded with `cryptography` (imported here, lazily).
    Raises ValueError when the package is missing or the key does not load."""
    return _loaded_key(account.private_key)


# Loading a 2048-bit RSA key checks it (tens of milliseconds, on the event loop): once per key
# text, not at every config check and token exchange. A few keys at most, held as the config is.
@functools.lru_cache(maxsize=32)
def _loaded_key(private_key: str) -> object:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        raise ValueError(_NEEDS_EXTRA) from None
    try:
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("the service account key's private_key is not a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the service account key's private_key is not an RSA key")
    return key
