"""OAuth2 access tokens for Google service account keys (a `vertex` provider's pool keys).

Followed: Google's "Using OAuth 2.0 for Server to Server Applications"
(https://developers.google.com/identity/protocols/oauth2/service-account#httprest): a JWT signed
with the account's key (RS256; header `alg`, `typ`, `kid` = `private_key_id`; claims `iss` =
`client_email`, `scope`, `aud` = `token_uri`, `iat`, `exp` = `iat` + 3600 at most) is POSTed to
the key's `token_uri` as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`;
the answer is `{"access_token", "expires_in", "token_type": "Bearer"}`, or an OAuth2 error
(`{"error": "invalid_grant", "error_description": …}`).

Tokens are cached per key (the configured secret) and exchanged again a few minutes before
they expire, on the adapter's clock; one exchange per key at a time, however many calls need
it (the others wait for its token). An exchange the token endpoint refuses is the key's
AUTH_INVALID; neither the key nor a token is ever in a message.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from router_service.clock import Clock
from router_service.config._vertex import (
    AccessToken,
    ServiceAccount,
    VertexCredential,
    parse_vertex_key,
    signing_key,
)
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope
from router_service.providers._http import map_transport_errors, send_upstream

__all__ = ["CLOUD_PLATFORM_SCOPE", "REFRESH_MARGIN_S", "TOKEN_LIFETIME_S", "TokenSource"]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_S = 3600  # the longest assertion Google accepts, and what its tokens live
# A token this close to its expiry is exchanged again before use: a call that starts with it
# may run for minutes (a long stream), and clocks differ.
REFRESH_MARGIN_S = 300.0


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float  # on the adapter's wall clock

    def __repr__(self) -> str:
        return f"_Token(expires_at={self.expires_at})"


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


class TokenSource:
    """The bearer token of each configured key: an access token as it is, a service account
    key's exchanged and cached. One per adapter (a config reload starts afresh)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        clock: Clock,
        *,
        connect_s: float,
        scope: str = CLOUD_PLATFORM_SCOPE,
    ) -> None:
        self._http = http
        self._clock = clock
        self._connect_s = connect_s
        self._scope = scope
        # All three hold one entry per configured key at most: bounded by the config.
        self._credentials: dict[str, VertexCredential] = {}
        self._tokens: dict[str, _Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def credential(self, secret: str) -> VertexCredential:
        found = self._credentials.get(secret)
        if found is None:
            try:
                found = parse_vertex_key(secret)
            except ValueError as exc:  # a key file that changed since the config loaded
                raise UpstreamFailure(
                    Outcome.AUTH_INVALID, f"unusable vertex key: {exc}", scope=Scope.KEY
                ) from None
            self._credentials[secret] = found
        return found

    async def bearer(self, secret: str, timeout_s: float) -> str:
        """The token to send for `secret`, exchanging (once, whoever asks) when it has none
        that is good for more than REFRESH_MARGIN_S."""
        credential = self.credential(secret)
        if isinstance(credential, AccessToken):
            return credential.token
        token = self._fresh(secret)
        if token is not None:
            return token
        lock = self._locks.setdefault(secret, asyncio.Lock())
        async with lock:
            token = self._fresh(secret)  # a call ahead of us in the lock exchanged already
            if token is not None:
                return token
            issued = await self._exchange(credential, timeout_s)
            self._tokens[secret] = issued
            return issued.value

    def forget(self, secret: str) -> None:
        """Drop the cached token of `secret` (Vertex refused it): the next use exchanges."""
        self._tokens.pop(secret, None)

    def _fresh(self, secret: str) -> str | None:
        token = self._tokens.get(secret)
        if token is not None and token.expires_at - REFRESH_MARGIN_S > self._clock.now():
            return token.value
        return None

    async def _exchange(self, account: ServiceAccount, timeout_s: float) -> _Token:
        now = self._clock.now()
        try:
            assertion = signed_assertion(account, now, self._scope)
        except ValueError as exc:  # the extra uninstalled, or a key that does not load
            raise UpstreamFailure(
                Outcome.AUTH_INVALID, f"service account {account.client_email}: {exc}"
            ) from None
        request = _token_request(account, assertion, min(self._connect_s, timeout_s), timeout_s)
        with map_transport_errors():
            response = await send_upstream(self._http, request)
        return _issued(account, response.status_code, response.content, now)


def _token_request(
    account: ServiceAccount, assertion: str, connect_s: float, timeout_s: float
) -> httpx.Request:
    form = urlencode({"grant_type": JWT_BEARER_GRANT, "assertion": assertion})
    timeout = {"connect": connect_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}
    return httpx.Request(
        "POST",
        account.token_uri,
        content=form.encode("ascii"),
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
        extensions={"timeout": timeout},
    )


def _issued(account: ServiceAccount, status: int, content: bytes, now: float) -> _Token:
    """The token of a token endpoint's answer, or the failure it is."""
    try:
        data: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        data = None
    data = data if isinstance(data, dict) else {}
    token, lifetime = data.get("access_token"), data.get("expires_in")
    if status == 200 and isinstance(token, str) and token and isinstance(lifetime, int | float):
        return _Token(token, now + float(lifetime))
    error = str(data.get("error", "")) or f"HTTP {status}"
    described = str(data.get("error_description", ""))[:200]
    detail = f"{error}: {described}" if described else error
    message = f"token exchange of service account {account.client_email} refused: {detail}"
    if status == 429:  # the token endpoint's own throttling: this key waits a little
        raise UpstreamFailure(Outcome.RATE_LIMITED, message, upstream_status=status)
    if status >= 500:
        raise UpstreamFailure(Outcome.UPSTREAM_ERROR, message, upstream_status=status)
    # 400 invalid_grant (a deleted or disabled key, a bad signature), 401 invalid_client, or a
    # 200 without a token: the key cannot get in.
    raise UpstreamFailure(Outcome.AUTH_INVALID, message, upstream_status=status, scope=Scope.KEY)
