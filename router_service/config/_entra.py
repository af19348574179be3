"""What an `azure` provider's pool key is: a resource key (`api-key`), or a Microsoft Entra ID
service principal whose client credentials are exchanged for access tokens.

A service principal is a JSON object, `{"tenant_id", "client_id", "client_secret"}` (the app
registration's Directory (tenant) ID, Application (client) ID and a client secret's value),
given as its text (usually `${AZURE_SP_JSON}`) or as `file:/path/to/principal.json`, the way
vertex keys are (`_key_files`). Anything else is an `api-key`, sent as it is. The router
exchanges a principal's credentials at `{authority_host}/{tenant_id}/oauth2/v2.0/token`
(`providers/_entra_auth.py`); nothing here needs a package beyond the router's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from router_service.config._base import Location
from router_service.config._key_files import key_file, key_text

if TYPE_CHECKING:
    from router_service.config._providers import ProviderConfig

__all__ = [
    "COGNITIVE_SERVICES_SCOPE",
    "DEFAULT_AUTHORITY_HOST",
    "ServicePrincipal",
    "azure_key_problems",
    "is_entra_key",
    "parse_entra_key",
]

# Microsoft Entra ID's global cloud; sovereign clouds have their own (login.microsoftonline.us,
# login.chinacloudapi.cn), and their own scope.
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
# The resource Azure OpenAI's tokens are for (the client credentials flow asks for `/.default`).
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
_FIELDS = ("tenant_id", "client_id", "client_secret")
# A tenant is a GUID or a domain (contoso.onmicrosoft.com): one segment of the token URL's path.
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    """An app registration's client credentials. `repr` names the tenant and the client (ids,
    not secrets); the client secret never reaches a log or an error."""

    tenant_id: str
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"ServicePrincipal(tenant_id={self.tenant_id!r}, client_id={self.client_id!r})"


def is_entra_key(secret: str) -> bool:
    """Whether a configured azure key is a service principal (JSON, or a file) rather than an
    `api-key`: decided by its shape alone, without reading a file."""
    return key_file(secret) is not None or secret.lstrip().startswith("{")


def parse_entra_key(secret: str) -> ServicePrincipal:
    """The service principal a key is. Raises ValueError with a message that quotes nothing of
    the key (a file's path, a missing field's name at most)."""
    text = key_text(secret, "service principal")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError(
            "a service principal must be a JSON object with tenant_id, client_id and "
            "client_secret; this one is not valid JSON"
        ) from None
    if not isinstance(data, dict):
        raise ValueError("a service principal must be a JSON object")
    fields: dict[str, str] = {}
    for name in _FIELDS:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"the service principal has no {name} (a non-empty string)")
        fields[name] = value.strip()
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValueError(f"the service principal has fields it does not take: {unknown}")
    if not _TENANT.fullmatch(fields["tenant_id"]):
        raise ValueError("the service principal's tenant_id is not a tenant id or domain")
    return ServicePrincipal(**fields)


def azure_key_problems(config: ProviderConfig) -> tuple[list[tuple[Location, str]], list[str]]:
    """The problems of an azure provider's keys, each at its path, and the client secrets of
    those that are service principals (for the log redactor: a secret found in a file is still
    one)."""
    problems: list[tuple[Location, str]] = []
    secrets: list[str] = []
    for i, key in enumerate(config.keys):
        secret = key.key.get_secret_value()
        if not is_entra_key(secret):
            continue
        try:
            secrets.append(parse_entra_key(secret).client_secret)
        except ValueError as exc:
            problems.append((("keys", i, "key"), str(exc)))
    return problems, secrets
