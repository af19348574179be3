"""Access tokens of Azure managed identities, from the platform's local token endpoint: no
secret is configured, the host itself is the credential.

Followed:
- the Instance Metadata Service (VMs, scale sets, AKS node pools), "How to use managed
  identities for Azure resources on an Azure VM to acquire an access token"
  (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token):
  `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
  (`&client_id=…` for a user-assigned identity) with `Metadata: true`; the answer is
  `{"access_token", "expires_in": "3599", "expires_on", "token_type": "Bearer", …}` (numbers as
  text), a refusal `{"error", "error_description"}` (400 `invalid_request` "Identity not found");
- App Service, Container Apps and Functions, "REST endpoint reference"
  (https://learn.microsoft.com/azure/app-service/overview-managed-identity): `GET
  {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…` (`&client_id=…`) with
  `X-IDENTITY-HEADER: {IDENTITY_HEADER}`; the answer has `expires_on` (unix seconds) and no
  `expires_in`;
- App Service's 2017-09-01 API (`MSI_ENDPOINT`/`MSI_SECRET`: Linux Consumption plans, Azure
  ML), azure-identity's `AppServiceV2017` and MSAL's `_obtain_token_on_machine_learning`:
  `GET {MSI_ENDPOINT}?api-version=2017-09-01&resource=…` (`&clientid=…`) with `secret:
  {MSI_SECRET}`; `expires_on` is a UTC date (`_token_answer._utc_date`);
- Cloud Shell (`MSI_ENDPOINT` alone), azure-identity's `CloudShellCredential`: `POST
  {MSI_ENDPOINT}` with the form `resource=…` and `Metadata: true`;
- Azure Arc's agent (`IDENTITY_ENDPOINT` with `IMDS_ENDPOINT`), "Authenticate against Azure
  resources with Azure Arc-enabled servers"
  (https://learn.microsoft.com/azure/azure-arc/servers/managed-identity-authentication): `GET
  {IDENTITY_ENDPOINT}?api-version=2020-06-01&resource=…` with `Metadata: true` is refused 401
  with `WWW-Authenticate: Basic realm=<key file>`; the same request again with `Authorization:
  Basic <the file's content>` gets the token. The file must be a `.key` of at most 4096 bytes
  in the agent's directory (`arc_key_directory`), as azure-identity and MSAL check: an endpoint
  that names any other file is not read.
A user-assigned identity is named by `client_id`, `object_id` or its resource id, `msi_res_id`
to IMDS and `mi_res_id` to App Service (MSAL's `_types_mapping`). Service Fabric's endpoint is
not spoken: it wants its server certificate pinned by thumbprint.

The token cache and the reading of answers are `_oauth.TokenSource`'s; the endpoint, its
header and protocol come from the provider's config (`${IDENTITY_ENDPOINT}`, `${MSI_SECRET}`…),
never from this process's environment directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx

from router_service.config import ProviderConfig
from router_service.config._managed_identity import (
    IdentityProtocol,
    IdentitySelector,
    ManagedIdentity,
    identity_protocol,
)
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope

__all__ = ["APP_SERVICE_API_VERSION", "IMDS_API_VERSION", "IdentityEndpoint"]

IMDS_API_VERSION = "2018-02-01"
APP_SERVICE_API_VERSION = "2019-08-01"
_DEFAULT_SUFFIX = "/.default"
_ARC_KEY_MAX_BYTES = 4096
_ARC_KEY_SUFFIX = ".key"


@dataclass(frozen=True, slots=True)
class _Protocol:
    """How one kind of identity endpoint is asked for a token."""

    api_version: str | None
    secret_header: str | None  # the header that carries identity_header
    # The query parameter of each way of naming a user-assigned identity it takes.
    selectors: dict[IdentitySelector, str] = field(default_factory=dict)
    metadata: bool = True  # sends `Metadata: true`
    form: bool = False  # a POST of the form rather than a GET of the query


_PROTOCOLS: dict[IdentityProtocol, _Protocol] = {
    "imds": _Protocol(
        IMDS_API_VERSION,
        None,
        {"client_id": "client_id", "object_id": "object_id", "resource_id": "msi_res_id"},
    ),
    "app-service": _Protocol(
        APP_SERVICE_API_VERSION,
        "X-IDENTITY-HEADER",
        {"client_id": "client_id", "object_id": "object_id", "resource_id": "mi_res_id"},
        metadata=False,
    ),
    "app-service-2017": _Protocol("2017-09-01", "secret", {"client_id": "clientid"}, False),
    "cloud-shell": _Protocol(None, None, form=True),
    "azure-arc": _Protocol("2020-06-01", None),
}
_SELECTOR_WORDS: dict[IdentitySelector, str] = {
    "client_id": "",
    "object_id": "object id ",
    "resource_id": "resource id ",
}


class IdentityEndpoint:
    """The token endpoint of this host's managed identities, as the provider configures it."""

    def __init__(self, config: ProviderConfig) -> None:
        self.url = config.identity_endpoint
        header = config.identity_header
        self._header = header.get_secret_value() if header is not None else None
        self._protocol = _PROTOCOLS[identity_protocol(config)]
        self._arc_directory = config.arc_key_directory
        # The identity endpoints take a resource, not a scope: the scope without `/.default`.
        self._resource = config.entra_scope.removesuffix(_DEFAULT_SUFFIX)

    def name(self, identity: ManagedIdentity) -> str:
        if identity.selector is None:
            return "the system-assigned managed identity"
        return f"managed identity {_SELECTOR_WORDS[identity.selector]}{identity.value}"

    def request(self, identity: ManagedIdentity, timeout: dict[str, float]) -> httpx.Request:
        """The request that asks the endpoint for `identity`'s token."""
        protocol = self._protocol
        headers = {"accept": "application/json"}
        if protocol.metadata:
            headers["Metadata"] = "true"
        if protocol.secret_header is not None and self._header is not None:
            headers[protocol.secret_header] = self._header
        params = {"resource": self._resource}
        if protocol.api_version is not None:
            params = {"api-version": protocol.api_version, **params}
        if identity.selector is not None and identity.value is not None:
            # The config refused at load the ids a protocol does not take.
            params[protocol.selectors[identity.selector]] = identity.value
        extensions = {"timeout": timeout}
        if protocol.form:
            headers["content-type"] = "application/x-www-form-urlencoded"
            body = urlencode(params).encode("ascii")
            return httpx.Request(
                "POST", self.url, content=body, headers=headers, extensions=extensions
            )
        return httpx.Request("GET", self.url, params=params, headers=headers, extensions=extensions)

    def challenged(self, refused: httpx.Request, challenge: httpx.Response) -> httpx.Request | None:
        """Azure Arc's 401: the same request with the key file's content as Basic credentials.
        Other protocols' 401 is their answer."""
        if self._protocol is not _PROTOCOLS["azure-arc"] or "Authorization" in refused.headers:
            return None
        secret = self._arc_key(challenge.headers.get("WWW-Authenticate", ""))
        headers = {**refused.headers, "Authorization": f"Basic {secret}"}
        return httpx.Request(
            refused.method, refused.url, headers=headers, extensions=refused.extensions
        )

    def _arc_key(self, challenge: str) -> str:
        """The content of the key file Arc's challenge names, read only when it is a small
        `.key` file right in the agent's directory (a symlink out of it is not)."""
        scheme, _, realm = challenge.partition("=")
        path = realm.strip().strip('"')
        if scheme.strip().lower() != "basic realm" or not path:
            raise ValueError("Azure Arc's 401 has no `WWW-Authenticate: Basic realm=<key file>`")
        real = Path(os.path.realpath(path))
        if real.parent != Path(os.path.realpath(self._arc_directory)):
            raise ValueError(
                f"Azure Arc's challenge names a key file outside {self._arc_directory}: not read"
            )
        if real.suffix != _ARC_KEY_SUFFIX:
            raise ValueError("Azure Arc's challenge names a file that is not a .key file: not read")
        try:
            if real.stat().st_size > _ARC_KEY_MAX_BYTES:
                raise ValueError(f"Azure Arc's key file {real} is over 4096 bytes: not read")
            secret = real.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(
                f"cannot read Azure Arc's key file {real} ({exc.strerror}): the router's user "
                "must be in the himds group"
            ) from None
        if not secret:
            raise ValueError(f"Azure Arc's key file {real} is empty")
        return secret

    def unreachable(self, name: str, failure: UpstreamFailure) -> UpstreamFailure:
        """An endpoint of this host that does not answer: no managed identity here (not on
        Azure, the identity not enabled, a network policy), the key's AUTH_INVALID: the key is
        set aside until a probe gets a token, and no deployment is cooled for it."""
        return UpstreamFailure(
            Outcome.AUTH_INVALID,
            f"{name}: the identity endpoint {self.url} is unreachable ({failure.message})",
            scope=Scope.KEY,
        )
