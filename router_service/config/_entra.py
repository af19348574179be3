"""What an `azure` provider's pool key is: a resource key (`api-key`), or a Microsoft Entra ID
identity whose access tokens the router gets for it:

- a **service principal**, a JSON object `{"tenant_id", "client_id", "client_secret"}` (the app
  registration's Directory (tenant) ID, Application (client) ID and a client secret's value);
- a **workload identity** (AKS), the same object with `federated_token_file` instead of a
  client secret: the file the kubelet projects (`AZURE_FEDERATED_TOKEN_FILE`), whose content is
  the client assertion (re-read on each exchange: it is rotated);
- a **managed identity**, the words `managed-identity` (the system-assigned identity) or
  `managed-identity:<client-id>` (a user-assigned one; by its object or resource id too, see
  `_managed_identity`): its tokens come from the platform's local endpoint (IMDS, App
  Service's, Cloud Shell's, Azure Arc's), no secret at all.

The JSON objects are given as their text (usually `${AZURE_SP_JSON}`) or as
`file:/path/to/principal.json`, the way vertex keys are (`_key_files`). Anything else is an
`api-key`, sent as it is. The exchanges are `providers/_entra_auth.py`'s; nothing here needs a
package beyond the router's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from router_service.config._base import Location
from router_service.config._key_files import key_file, key_text
from router_service.config._managed_identity import (
    IMDS_ENDPOINT,
    MANAGED_IDENTITY,
    ManagedIdentity,
    identity_protocol_problems,
    is_managed_identity_key,
    parse_managed_identity,
)

if TYPE_CHECKING:
    from router_service.config._providers import ProviderConfig

__all__ = [
    "COGNITIVE_SERVICES_SCOPE",
    "DEFAULT_AUTHORITY_HOST",
    "IMDS_ENDPOINT",
    "MANAGED_IDENTITY",
    "EntraCredential",
    "ManagedIdentity",
    "ServicePrincipal",
    "WorkloadIdentity",
    "azure_key_problems",
    "federated_assertion",
    "is_entra_key",
    "is_managed_identity_key",
    "parse_entra_key",
]

# Microsoft Entra ID's global cloud; sovereign clouds have their own (login.microsoftonline.us,
# login.chinacloudapi.cn), and their own scope.
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
# The resource Azure OpenAI's tokens are for (the client credentials flow asks for `/.default`).
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
_SECRETS = ("client_secret", "federated_token_file")
_FIELDS = ("tenant_id", "client_id", *_SECRETS)
# A tenant is a GUID or a domain (contoso.onmicrosoft.com): one segment of the token URL's path.
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")
# What an operator may have meant for an identity key (`managed_identity`, `Workload-Identity`):
# refused at load with the right spelling rather than sent to Azure as an `api-key`.
_IDENTITY_WORDS = re.compile(r"\s*(?:managed|workload)[-_ ]?identity", re.IGNORECASE)
_WORKLOAD_SHAPE = (
    'a workload identity is a JSON key: {"tenant_id": "${AZURE_TENANT_ID}", "client_id": '
    '"${AZURE_CLIENT_ID}", "federated_token_file": "${AZURE_FEDERATED_TOKEN_FILE}"}'
)


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    """An app registration's client credentials. `repr` names the tenant and the client (ids,
    not secrets); the client secret never reaches a log or an error."""

    tenant_id: str
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"ServicePrincipal(tenant_id={self.tenant_id!r}, client_id={self.client_id!r})"


@dataclass(frozen=True, slots=True)
class WorkloadIdentity:
    """A client whose assertion is a federated token in a file (AKS workload identity): the
    file's content is read at each exchange, never kept, logged or quoted."""

    tenant_id: str
    client_id: str
    federated_token_file: str


EntraCredential = ServicePrincipal | WorkloadIdentity | ManagedIdentity


def is_entra_key(secret: str) -> bool:
    """Whether a configured azure key is an Entra ID identity (JSON, a file, a managed identity,
    or what reads as a misspelt one) rather than an `api-key`: decided by its shape alone,
    without reading a file."""
    stripped = secret.lstrip()
    return (
        key_file(secret) is not None
        or stripped.startswith("{")
        or _IDENTITY_WORDS.match(stripped) is not None
    )


def parse_entra_key(secret: str) -> EntraCredential:
    """The identity a key is. Raises ValueError with a message that quotes nothing of the key
    (a file's path, a missing field's name at most)."""
    if _IDENTITY_WORDS.match(secret):
        return _managed_identity(secret.strip())
    text = key_text(secret, "service principal")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError(
            "a service principal must be a JSON object with tenant_id, client_id and "
            "client_secret (or federated_token_file); this one is not valid JSON"
        ) from None
    if not isinstance(data, dict):
        raise ValueError("a service principal must be a JSON object")
    fields = _principal_fields(data)
    if not _TENANT.fullmatch(fields["tenant_id"]):
        raise ValueError("the service principal's tenant_id is not a tenant id or domain")
    if "federated_token_file" in fields:
        identity = WorkloadIdentity(**fields)
        if not Path(identity.federated_token_file).is_absolute():
            raise ValueError("the workload identity's federated_token_file is not an absolute path")
        return identity
    return ServicePrincipal(**fields)


def _managed_identity(word: str) -> ManagedIdentity:
    name = word.partition(":")[0]
    if name == MANAGED_IDENTITY:
        return parse_managed_identity(word)
    if name.lower().startswith("workload"):
        raise ValueError(_WORKLOAD_SHAPE)
    raise ValueError(
        "a managed identity is written `managed-identity` (system-assigned) or "
        "`managed-identity:<client-id>` (user-assigned)"
    )


def _principal_fields(data: dict[str, object]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name in _FIELDS:
        value = data.get(name)
        if value is None and name in _SECRETS:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"the service principal has no {name} (a non-empty string)")
        fields[name] = value.strip()
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValueError(f"the service principal has fields it does not take: {unknown}")
    given = [name for name in _SECRETS if name in fields]
    if not given:
        raise ValueError(
            "the service principal has no client_secret (a non-empty string), nor a "
            "federated_token_file (a workload identity)"
        )
    if len(given) > 1:
        raise ValueError("the service principal has both client_secret and federated_token_file")
    return fields


def federated_assertion(identity: WorkloadIdentity) -> str:
    """The client assertion of a workload identity: its token file's content, as it is now (the
    kubelet rotates it). Raises ValueError naming the file, never quoting it."""
    assertion = key_text(f"file:{identity.federated_token_file}", "federated token")
    if not assertion:
        raise ValueError(f"the federated token file {identity.federated_token_file} is empty")
    return assertion


def azure_key_problems(config: ProviderConfig) -> tuple[list[tuple[Location, str]], list[str]]:
    """The problems of an azure provider's keys, each at its path, and the client secrets of
    those that are service principals (for the log redactor: a secret found in a file is still
    one)."""
    problems: list[tuple[Location, str]] = []
    secrets: list[str] = []
    identities: list[tuple[int, ManagedIdentity]] = []
    for i, key in enumerate(config.keys):
        secret = key.key.get_secret_value()
        if not is_entra_key(secret):
            continue
        try:
            credential = parse_entra_key(secret)
            if isinstance(credential, WorkloadIdentity):
                federated_assertion(credential)  # readable now, or refused by its path
        except ValueError as exc:
            problems.append((("keys", i, "key"), str(exc)))
            continue
        if isinstance(credential, ServicePrincipal):
            secrets.append(credential.client_secret)
        if isinstance(credential, ManagedIdentity):
            identities.append((i, credential))
    problems += identity_protocol_problems(config, identities)
    return problems, secrets
