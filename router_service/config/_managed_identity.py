"""What an `azure` provider's managed identity key names, and which of the platform's local
token endpoints (`identity_protocol`) asks for its tokens.

A key is `managed-identity` (the host's system-assigned identity) or a user-assigned identity:
`managed-identity:<client-id>` (a GUID, as before), or by one of the three ids Azure knows it
by, `managed-identity:client_id=<GUID>`, `managed-identity:object_id=<GUID>` (its Object
(principal) ID) or `managed-identity:resource_id=/subscriptions/…/userAssignedIdentities/<name>`.
Each protocol sends the id under its own query parameter (`_managed_identity` in providers);
what a protocol cannot ask for is refused at load, at the key's path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from router_service.config._base import Location

if TYPE_CHECKING:
    from router_service.config._providers import ProviderConfig

__all__ = [
    "ARC_KEY_DIRECTORY",
    "IMDS_ENDPOINT",
    "MANAGED_IDENTITY",
    "IdentityProtocol",
    "IdentitySelector",
    "ManagedIdentity",
    "identity_protocol",
    "identity_protocol_problems",
    "is_managed_identity_key",
    "parse_managed_identity",
]

# The Instance Metadata Service's token endpoint (VMs, scale sets, AKS nodes): link-local.
IMDS_ENDPOINT = "http://169.254.169.254/metadata/identity/oauth2/token"
# Where the Azure Connected Machine agent (Arc) puts the key files its challenge names (Linux).
ARC_KEY_DIRECTORY = "/var/opt/azcmagent/tokens"
MANAGED_IDENTITY = "managed-identity"

IdentityProtocol = Literal["imds", "app-service", "app-service-2017", "cloud-shell", "azure-arc"]
IdentitySelector = Literal["client_id", "object_id", "resource_id"]

# A client id or object id is a GUID (the identity's "Client ID" / "Object (principal) ID").
_GUID = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")
# A user-assigned identity's Azure Resource Manager id (resource names are case-insensitive).
_RESOURCE_ID = re.compile(
    r"/subscriptions/[0-9A-Fa-f-]{36}/resourceGroups/[^/]+/providers/"
    r"Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+",
    re.IGNORECASE,
)
_RESOURCE_SHAPE = (
    "/subscriptions/<subscription>/resourceGroups/<group>/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/<name>"
)
_USER_ASSIGNED_SHAPES = (
    "a user-assigned managed identity is `managed-identity:<client-id>` (its client id a GUID), "
    "`managed-identity:client_id=<GUID>`, `managed-identity:object_id=<GUID>` or "
    f"`managed-identity:resource_id={_RESOURCE_SHAPE}`"
)
# The ids that are GUIDs, and what the portal calls them.
_GUID_SELECTORS: dict[str, tuple[IdentitySelector, str]] = {
    "client_id": ("client_id", "Client ID"),
    "object_id": ("object_id", "Object (principal) ID"),
}
# The wire names of a resource id, which operators may copy from a platform's docs.
_WIRE_RESOURCE_NAMES = ("mi_res_id", "msi_res_id")
# The protocols that serve the host's system-assigned identity only.
_SYSTEM_ONLY = {"cloud-shell": "Cloud Shell", "azure-arc": "Azure Arc"}
# What each protocol's identity_endpoint is, in the platform's variables.
_ENDPOINT_VARIABLE = {
    "app-service": "${IDENTITY_ENDPOINT}",
    "app-service-2017": "${MSI_ENDPOINT}",
    "cloud-shell": "${MSI_ENDPOINT}",
    "azure-arc": "${IDENTITY_ENDPOINT}",
}


@dataclass(frozen=True, slots=True)
class ManagedIdentity:
    """The platform's identity of this host: the system-assigned one (`selector` None) or a
    user-assigned one, by its client id, object id or resource id. Nothing of it is secret."""

    selector: IdentitySelector | None = None
    value: str | None = None


def is_managed_identity_key(secret: str) -> bool:
    """Whether a configured azure key names a managed identity (no secret in it)."""
    return secret.strip().partition(":")[0] == MANAGED_IDENTITY


def parse_managed_identity(word: str) -> ManagedIdentity:
    """The identity a `managed-identity[:…]` key names. Raises ValueError saying the syntax."""
    _, colon, named = word.partition(":")
    if not colon:
        return ManagedIdentity()
    if _GUID.fullmatch(named):
        return ManagedIdentity("client_id", named)
    selector, equals, value = named.partition("=")
    selector, value = selector.strip(), value.strip()
    if not equals:
        raise ValueError(_USER_ASSIGNED_SHAPES)
    by_guid = _GUID_SELECTORS.get(selector)
    if by_guid is not None:
        if not _GUID.fullmatch(value):
            raise ValueError(
                f"the managed identity's {selector} is a GUID (the identity's {by_guid[1]} in "
                "the portal)"
            )
        return ManagedIdentity(by_guid[0], value)
    if selector == "resource_id" or selector in _WIRE_RESOURCE_NAMES:
        if selector != "resource_id":
            raise ValueError(
                f"a managed identity by its resource id is written `managed-identity:"
                f"resource_id=…` (the router sends it as {' or '.join(_WIRE_RESOURCE_NAMES)}, "
                "as the endpoint wants)"
            )
        if not _RESOURCE_ID.fullmatch(value):
            raise ValueError(f"the managed identity's resource_id is not {_RESOURCE_SHAPE}")
        return ManagedIdentity("resource_id", value)
    raise ValueError(_USER_ASSIGNED_SHAPES)


def identity_protocol(config: ProviderConfig) -> IdentityProtocol:
    """The protocol of the provider's identity endpoint: the one it sets, else App Service's
    when it has an identity header, else IMDS's."""
    if config.identity_protocol is not None:
        return config.identity_protocol
    return "imds" if config.identity_header is None else "app-service"


def identity_protocol_problems(
    config: ProviderConfig, identities: list[tuple[int, ManagedIdentity]]
) -> list[tuple[Location, str]]:
    """What does not fit together of the provider's identity settings and its managed
    identity keys (`identities`: each with its index in `keys`)."""
    protocol = identity_protocol(config)
    problems: list[tuple[Location, str]] = []
    needs_header = protocol in ("app-service", "app-service-2017")
    if needs_header and config.identity_header is None:
        variable = "${MSI_SECRET}" if protocol == "app-service-2017" else "${IDENTITY_HEADER}"
        problems.append((("identity_header",), f"{protocol} needs identity_header ({variable})"))
    if not needs_header and config.identity_header is not None:
        problems.append((("identity_header",), f"{protocol} takes no identity_header"))
    if protocol != "imds" and config.identity_endpoint == IMDS_ENDPOINT:
        message = f"{protocol} needs identity_endpoint ({_ENDPOINT_VARIABLE[protocol]})"
        if config.identity_protocol is None:  # inferred from the header alone
            message = (
                "identity_header is App Service's (Container Apps', Functions'): set "
                "identity_endpoint to its ${IDENTITY_ENDPOINT} too"
            )
        problems.append((("identity_endpoint",), message))
    for index, identity in identities:
        problem = _identity_problem(protocol, identity)
        if problem:
            problems.append((("keys", index, "key"), problem))
    return problems


def _identity_problem(protocol: IdentityProtocol, identity: ManagedIdentity) -> str | None:
    if identity.selector is None:
        return None
    if protocol in _SYSTEM_ONLY:
        return (
            f"{_SYSTEM_ONLY[protocol]} serves only the host's system-assigned identity: "
            "write `managed-identity`"
        )
    if protocol == "app-service-2017" and identity.selector != "client_id":
        return (
            "App Service's 2017 API (MSI_ENDPOINT) names a user-assigned identity by its client "
            "id only: `managed-identity:<client-id>`"
        )
    return None
