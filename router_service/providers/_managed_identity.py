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
  `expires_in`.

The token cache and the reading of answers are `_oauth.TokenSource`'s; `identity_endpoint` and
`identity_header` come from the provider's config (`${IDENTITY_ENDPOINT}`, `${IDENTITY_HEADER}`),
never from this process's environment directly.
"""

from __future__ import annotations

import httpx

from router_service.config import ProviderConfig
from router_service.config._entra import ManagedIdentity
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope

__all__ = ["APP_SERVICE_API_VERSION", "IMDS_API_VERSION", "IdentityEndpoint"]

IMDS_API_VERSION = "2018-02-01"
APP_SERVICE_API_VERSION = "2019-08-01"
_DEFAULT_SUFFIX = "/.default"


class IdentityEndpoint:
    """The token endpoint of this host's managed identities, as the provider configures it:
    IMDS's protocol, or App Service's when an identity header is set."""

    def __init__(self, config: ProviderConfig) -> None:
        self.url = config.identity_endpoint
        header = config.identity_header
        self._header = header.get_secret_value() if header is not None else None
        # The identity endpoints take a resource, not a scope: the scope without `/.default`.
        self._resource = config.entra_scope.removesuffix(_DEFAULT_SUFFIX)

    def name(self, identity: ManagedIdentity) -> str:
        if identity.client_id is None:
            return "the system-assigned managed identity"
        return f"managed identity {identity.client_id}"

    def request(self, identity: ManagedIdentity, timeout: dict[str, float]) -> httpx.Request:
        """The GET that asks the endpoint for `identity`'s token."""
        if self._header is None:
            version, headers = IMDS_API_VERSION, {"Metadata": "true"}
        else:
            version, headers = APP_SERVICE_API_VERSION, {"X-IDENTITY-HEADER": self._header}
        params = {"api-version": version, "resource": self._resource}
        if identity.client_id is not None:
            params["client_id"] = identity.client_id
        return httpx.Request(
            "GET",
            self.url,
            params=params,
            headers={**headers, "accept": "application/json"},
            extensions={"timeout": timeout},
        )

    def unreachable(self, name: str, failure: UpstreamFailure) -> UpstreamFailure:
        """An endpoint of this host that does not answer: no managed identity here (not on
        Azure, the identity not enabled, a network policy), the key's AUTH_INVALID: the key is
        set aside until a probe gets a token, and no deployment is cooled for it."""
        return UpstreamFailure(
            Outcome.AUTH_INVALID,
            f"{name}: the identity endpoint {self.url} is unreachable ({failure.message})",
            scope=Scope.KEY,
        )
