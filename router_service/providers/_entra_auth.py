"""OAuth2 access tokens for Microsoft Entra ID identities (an `azure` provider's keys that are
not `api-key`s): service principals, workload identities and managed identities.

Followed: Microsoft identity platform, "OAuth 2.0 client credentials flow"
(https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow):
`POST {authority_host}/{tenant}/oauth2/v2.0/token`, form-encoded `grant_type=client_credentials`,
`client_id`, `scope=https://cognitiveservices.azure.com/.default` and the client's proof:
- a shared secret, `client_secret` (a service principal);
- a federated token, `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:
  jwt-bearer` and `client_assertion=<the token>` (a workload identity: AKS projects the token
  into `AZURE_FEDERATED_TOKEN_FILE` and rotates it, so the file is read at each exchange;
  https://learn.microsoft.com/azure/aks/workload-identity-overview).
The answer is `{"token_type": "Bearer", "expires_in", "access_token"}`, or an OAuth2 error
(`{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret
provided…", "error_codes": [7000215], …}`). A managed identity asks the platform's local
endpoint instead (`_managed_identity`). Azure OpenAI takes the token as `Authorization: Bearer`
(https://learn.microsoft.com/azure/ai-foundry/openai/how-to/managed-identity).

The cache, its refresh, one exchange per key at a time and the reading of the endpoint's
refusals (400/401: the key's AUTH_INVALID) are `_oauth.TokenSource`'s, as for every kind.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from router_service.clock import Clock
from router_service.config import ProviderConfig
from router_service.config._entra import (
    EntraCredential,
    ManagedIdentity,
    ServicePrincipal,
    federated_assertion,
    parse_entra_key,
)
from router_service.errors import UpstreamFailure
from router_service.providers._managed_identity import IdentityEndpoint
from router_service.providers._oauth import TokenExchange, TokenSource, form_request

__all__ = ["CLIENT_ASSERTION_TYPE", "EntraExchange", "entra_tokens"]

CLIENT_CREDENTIALS_GRANT = "client_credentials"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class EntraExchange(TokenExchange[EntraCredential]):
    """An identity's credentials, exchanged at its tenant's token endpoint (a managed identity's
    at this host's identity endpoint)."""

    def __init__(self, authority_host: str, scope: str, identity: IdentityEndpoint) -> None:
        self._authority_host = authority_host
        self._scope = scope
        self._identity = identity

    def parse(self, secret: str) -> EntraCredential:
        return parse_entra_key(secret)

    def name(self, credential: EntraCredential) -> str:
        if isinstance(credential, ManagedIdentity):
            return self._identity.name(credential)
        kind = "client" if isinstance(credential, ServicePrincipal) else "workload identity"
        return f"{kind} {credential.client_id} of tenant {credential.tenant_id}"

    def request(
        self, credential: EntraCredential, now: float, timeout: dict[str, float]
    ) -> httpx.Request:
        if isinstance(credential, ManagedIdentity):
            return self._identity.request(credential, timeout)
        tenant = quote(credential.tenant_id, safe="")
        url = f"{self._authority_host}/{tenant}/oauth2/v2.0/token"
        form = {"grant_type": CLIENT_CREDENTIALS_GRANT, "client_id": credential.client_id}
        if isinstance(credential, ServicePrincipal):
            form["client_secret"] = credential.client_secret
        else:  # read now, not at load: the kubelet rotates the token in the file
            form["client_assertion_type"] = CLIENT_ASSERTION_TYPE
            form["client_assertion"] = federated_assertion(credential)
        form["scope"] = self._scope
        return form_request(url, form, timeout)

    def challenged(
        self, credential: EntraCredential, refused: httpx.Request, challenge: httpx.Response
    ) -> httpx.Request | None:
        if isinstance(credential, ManagedIdentity):
            return self._identity.challenged(refused, challenge)
        return None

    def unreachable(
        self, credential: EntraCredential, name: str, failure: UpstreamFailure
    ) -> UpstreamFailure:
        if isinstance(credential, ManagedIdentity):
            return self._identity.unreachable(name, failure)
        return failure


def entra_tokens(
    config: ProviderConfig, http: httpx.AsyncClient, clock: Clock
) -> TokenSource[EntraCredential]:
    """The token source of an azure adapter with Entra ID identity keys."""
    exchange = EntraExchange(config.authority_host, config.entra_scope, IdentityEndpoint(config))
    return TokenSource(exchange, http, clock, connect_s=config.timeouts.connect_s)
