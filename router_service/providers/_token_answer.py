"""A token endpoint's answer (OAuth2's, RFC 6749 §5.1 and §5.2, and the identity endpoints'
variants of it) read: the token it issued and when that is exchanged again, or the failure the
answer is (`_oauth.TokenSource` caches and refreshes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from router_service._masking import cut_words
from router_service.clock import Clock
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope
from router_service.providers._classify import upstream_wait

__all__ = ["REFRESH_MARGIN_S", "Token", "issued_token"]

# A token this close to its expiry is exchanged again before use: a call that starts with it
# may run for minutes (a long stream), and clocks differ.
REFRESH_MARGIN_S = 300.0
_UTC_SUFFIX = " +00:00"


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    expires_at: float  # on the adapter's wall clock
    # When it is exchanged again: REFRESH_MARGIN_S before it expires, or half way through a
    # life shorter than twice that (an identity endpoint's own cached token near its end).
    refresh_at: float

    def __repr__(self) -> str:
        return f"Token(expires_at={self.expires_at})"

    @classmethod
    def issued(cls, value: str, expires_at: float, now: float) -> Token:
        margin = min(REFRESH_MARGIN_S, max(expires_at - now, 0.0) / 2)
        return cls(value, expires_at, expires_at - margin)


def issued_token(name: str, response: httpx.Response, now: float, clock: Clock) -> Token:
    """The token of a token endpoint's answer, or the failure it is (with the wait its
    throttling or outage asked for: `Retry-After`)."""
    status = response.status_code
    try:
        data: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    data = data if isinstance(data, dict) else {}
    token, expires_at = data.get("access_token"), _expires_at(data, now)
    if status == 200 and isinstance(token, str) and token and expires_at is not None:
        return Token.issued(token, expires_at, now)
    error = str(data.get("error", "")) or f"HTTP {status}"
    # The first line: Entra's descriptions go on with trace and correlation ids and a timestamp.
    # (App Service's identity endpoint says `{"statusCode", "message"}`.)
    described = str(data.get("error_description") or data.get("message") or "").splitlines()
    described = [line.strip() for line in described if line.strip()]
    detail = f"{error}: {cut_words(described[0], 200)}" if described else error
    message = f"token exchange of {name} refused: {detail}"
    # The token endpoint's own throttling (this key waits), or its outage.
    outcome = Outcome.RATE_LIMITED if status == 429 else Outcome.UPSTREAM_ERROR
    if status == 429 or status >= 500:
        wait = upstream_wait(outcome, response.headers, clock)
        raise UpstreamFailure(outcome, message, upstream_status=status, retry_after_s=wait)
    # 400 invalid_grant / unauthorized_client / invalid_request, 401 invalid_client, or a 200
    # without a token: the key cannot get in.
    raise UpstreamFailure(Outcome.AUTH_INVALID, message, upstream_status=status, scope=Scope.KEY)


def _expires_at(data: dict[str, Any], now: float) -> float | None:
    """When an issued token expires, on the wall clock: `expires_in` seconds from now (OAuth2;
    IMDS sends it as text), else `expires_on`, unix seconds (App Service's identity endpoint
    sends only that); None for an answer with neither."""
    lifetime, expires_on = data.get("expires_in"), data.get("expires_on")
    if isinstance(lifetime, str) and lifetime.isdigit():  # some endpoints send it as text
        lifetime = int(lifetime)
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool):
        return now + float(lifetime)
    if isinstance(expires_on, str) and expires_on.isdigit():
        expires_on = int(expires_on)
    elif isinstance(expires_on, str):
        expires_on = _utc_date(expires_on)
    if isinstance(expires_on, int | float) and not isinstance(expires_on, bool):
        return float(expires_on)
    return None


def _utc_date(text: str) -> float | None:
    """App Service's 2017-09-01 API says `expires_on` as a UTC date, its format the host's:
    `06/20/2019 02:57:58 +00:00` on Linux, `1/16/2020 5:24:12 AM +00:00` on Windows."""
    if not text.endswith(_UTC_SUFFIX):
        return None
    for pattern in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p"):
        try:
            parsed = datetime.strptime(text.removesuffix(_UTC_SUFFIX), pattern)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC).timestamp()
    return None
