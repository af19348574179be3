"""OAuth2 access tokens for Microsoft Entra ID service principals (an `azure` provider's keys
that are not `api-key`s).

Followed: Microsoft identity platform, "OAuth 2.0 client credentials flow", shared secret
(https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow):
`POST {authority_host}/{tenant}/oauth2/v2.0/token`, form-encoded `grant_type=client_credentials`,
`client_id`, `client_secret` and `scope=https://cognitiveservices.azure.com/.default`; the answer
is `{"token_type": "Bearer", "expires_in", "access_token"}`, or an OAuth2 error (`{"error":
"invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided…",
"error_codes": [7000215], …}`). Azure OpenAI takes the token as `Authorization: Bearer`
(https://learn.microsoft.com/azure/ai-foundry/openai/how-to/managed-identity).

The cache, its refresh, one exchange per key at a time and the reading of the endpoint's
refusals (400/401: the key's AUTH_INVALID) are `_oauth.TokenSource`'s, as for every kind.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from router_service.clock import Clock
from router_service.config import ProviderConfig
from router_service.config._entra import ServicePrincipal, parse_entra_key
from router_service.providers._oauth import TokenExchange, TokenSource, form_request

__all__ = ["EntraExchange", "entra_tokens"]

CLIENT_CREDENTIALS_GRANT = "client_credentials"


class EntraExchange(TokenExchange[ServicePrincipal]):
    """A service principal's client credentials, exchanged at its tenant's token endpoint."""

    def __init__(self, authority_host: str, scope: str) -> None:
        self._authority_host = authority_host
        self._scope = scope

    def parse(self, secret: str) -> ServicePrincipal:
        return parse_entra_key(secret)

    def name(self, credential: ServicePrincipal) -> str:
        return f"client {credential.client_id} of tenant {credential.tenant_id}"

    def request(
        self, credential: ServicePrincipal, now: float, timeout: dict[str, float]
    ) -> httpx.Request:
        tenant = quote(credential.tenant_id, safe="")
        url = f"{self._authority_host}/{tenant}/oauth2/v2.0/token"
        form = {
            "grant_type": CLIENT_CREDENTIALS_GRANT,
            "client_id": credential.client_id,
            "client_secret": credential.client_secret,
            "scope": self._scope,
        }
        return form_request(url, form, timeout)


def entra_tokens(
    config: ProviderConfig, http: httpx.AsyncClient, clock: Clock
) -> TokenSource[ServicePrincipal]:
    """The token source of an azure adapter with service principal keys."""
    exchange = EntraExchange(config.authority_host, config.entra_scope)
    return TokenSource(exchange, http, clock, connect_s=config.timeouts.connect_s)
