"""OAuth2 access tokens for Google service account keys (a `vertex` provider's pool keys).

Followed: Google's "Using OAuth 2.0 for Server to Server Applications"
(https://developers.google.com/identity/protocols/oauth2/service-account#httprest): a JWT signed
with the account's key (RS256; header `alg`, `typ`, `kid` = `private_key_id`; claims `iss` =
`client_email`, `scope`, `aud` = `token_uri`, `iat`, `exp` = `iat` + 3600 at most) is POSTed to
the key's `token_uri` as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`;
the answer is `{"access_token", "expires_in", "token_type": "Bearer"}`, or an OAuth2 error
(`{"error": "invalid_grant", "error_description": …}`).

The cache, its refresh and the classification of the token endpoint's answers are the
generic `_oauth.TokenSource`'s; this module is the Google part, `GoogleExchange`: what a key is
(`config._vertex.parse_vertex_key`) and the signed assertion that exchanges it.
"""

from __future__ import annotations

import base64

import httpx
import orjson

from router_service.clock import Clock
from router_service.config._vertex import (
    AccessToken,
    ExpressKey,
    ServiceAccount,
    VertexCredential,
    parse_vertex_key,
    signing_key,
)
from router_service.providers._oauth import (
    REFRESH_MARGIN_S,
    TokenExchange,
    TokenSource,
    form_request,
)

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "REFRESH_MARGIN_S",
    "TOKEN_LIFETIME_S",
    "GoogleExchange",
    "google_tokens",
]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_S = 3600  # the longest assertion Google accepts, and what its tokens live


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed_assertion(account: ServiceAccount, now: float, scope: str) -> str:
    """The JWT an exchange sends: RS256 over `header.claims`."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    header = {"alg": "RS256", "typ": "JWT", "kid": account.private_key_id}
    issued = int(now)
    claims = {
        "iss": account.client_email,
        "scope": scope,
        "aud": account.token_uri,
        "iat": issued,
        "exp": issued + TOKEN_LIFETIME_S,
    }
    signing_input = f"{_b64url(orjson.dumps(header))}.{_b64url(orjson.dumps(claims))}"
    key = signing_key(account)
    assert isinstance(key, rsa.RSAPrivateKey)  # signing_key checks it
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


class GoogleExchange(TokenExchange[VertexCredential]):
    """A service account key is exchanged with a signed JWT at its `token_uri`; an access
    token given as the key is sent as it is, and so is an express mode API key (its adapter
    sends it in `x-goog-api-key`)."""

    def __init__(self, scope: str = CLOUD_PLATFORM_SCOPE) -> None:
        self._scope = scope

    def parse(self, secret: str) -> VertexCredential:
        return parse_vertex_key(secret)

    def given_token(self, credential: VertexCredential) -> str | None:
        if isinstance(credential, ExpressKey):
            return credential.key
        return credential.token if isinstance(credential, AccessToken) else None

    def name(self, credential: VertexCredential) -> str:
        if isinstance(credential, AccessToken):
            return "an access token"
        if isinstance(credential, ExpressKey):
            return "an express mode API key"
        return f"service account {credential.client_email}"

    def request(
        self, credential: VertexCredential, now: float, timeout: dict[str, float]
    ) -> httpx.Request:
        assert isinstance(credential, ServiceAccount)  # the others are given, not exchanged
        assertion = signed_assertion(credential, now, self._scope)
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
        return form_request(credential.token_uri, form, timeout)


def google_tokens(
    http: httpx.AsyncClient, clock: Clock, *, connect_s: float
) -> TokenSource[VertexCredential]:
    """The token source of a vertex adapter."""
    return TokenSource(GoogleExchange(), http, clock, connect_s=connect_s)
