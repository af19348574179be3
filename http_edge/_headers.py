"""What an answer's headers say besides its payload, from what the router said: the route it took
(`x-switchboard-*`, and `Age` for an answer from the response cache), and where the caller stands
against its own rpm and tpm in OpenAI's words (`x-ratelimit-*`), on answers and on the 429 that
refuses a call over them. The one place the edge writes them."""

from __future__ import annotations

import math

from clients.switchboard.v1 import routing_pb2
from clients.switchboard.v1.routing_pb2 import RateLimitStatus, RouteInfo

__all__ = [
    "RATE_LIMIT_HEADERS",
    "ROUTE_HEADERS",
    "cost_text",
    "duration_text",
    "rate_limit_headers",
    "route_headers",
]

# Every header `route_headers` may write (CORS exposes them to browser pages: `_cors.py`).
ROUTE_HEADERS = (
    "x-switchboard-deployment",
    "x-switchboard-attempts",
    "x-switchboard-cache",
    "x-switchboard-cost-usd",
    "x-switchboard-guardrails",
    "x-switchboard-answer-guardrails",
    "x-switchboard-truncated-messages",
)
RATE_LIMIT_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)

_CACHE_STATUS = {
    routing_pb2.CACHE_STATUS_HIT: "hit",
    routing_pb2.CACHE_STATUS_MISS: "miss",
    routing_pb2.CACHE_STATUS_BYPASS: "bypass",
}


def route_headers(route: RouteInfo | None, *others: RouteInfo) -> dict[str, str]:
    """Response headers naming the deployment that answered and how many attempts it took;
    what the response cache did, and a cached answer's age in seconds; what the call cost in
    USD when the router knows (a unary answer's route: a stream's headers leave before it);
    the caller's rate limits when it has rpm or tpm; the guardrails that redacted the request
    or acted on the answer, as RouteInfo.guardrails lists them (`x-switchboard-guardrails`),
    and those that screen the answer, whether or not they acted (known before a stream's
    first chunk: `x-switchboard-answer-guardrails`); how many messages the answering call
    left out to fit its context window (`x-switchboard-truncated-messages`).
    `others`: the routes of the other calls one answer was made of (a legacy completion's
    prompts): the cost is theirs together, when each has one, the limits are the tightest any
    of them reported, the guardrails those of any of them, a cache hit only when each was."""
    if route is None:
        return {}
    headers = _served(route, others) if route.deployment else {}
    standing = _tightest(route, others)
    if standing is not None:
        headers.update(rate_limit_headers(standing))
    routes = (route, *others)
    redacted = dict.fromkeys(name for r in routes for name in r.guardrails)
    if redacted:  # rule names are config's (letters, digits, `_.-`): header-safe
        headers["x-switchboard-guardrails"] = ", ".join(redacted)
    screening = dict.fromkeys(name for r in routes for name in r.answer_guardrails)
    if screening:
        headers["x-switchboard-answer-guardrails"] = ", ".join(screening)
    if route.truncated_messages:  # `truncation: auto` left some out to fit the window
        headers["x-switchboard-truncated-messages"] = str(route.truncated_messages)
    return headers


def _served(route: RouteInfo, others: tuple[RouteInfo, ...]) -> dict[str, str]:
    headers = {"x-switchboard-attempts": str(len(route.attempts))}
    if route.deployment.isascii() and route.deployment.isprintable():
        headers["x-switchboard-deployment"] = route.deployment
    cache, age_s = _cached(route, others)
    if cache:
        headers["x-switchboard-cache"] = _CACHE_STATUS.get(cache, "")
        if cache == routing_pb2.CACHE_STATUS_HIT:
            headers["age"] = str(int(age_s))
    if route.HasField("cost_usd") and all(r.HasField("cost_usd") for r in others):
        cost = route.cost_usd + sum(r.cost_usd for r in others)
        headers["x-switchboard-cost-usd"] = cost_text(cost)
    return headers


def _cached(
    route: RouteInfo, others: tuple[RouteInfo, ...]
) -> tuple[routing_pb2.CacheStatus.ValueType, float]:
    """What the cache did for the answer, and a hit's age: of calls made together, a hit only
    when each was (then the oldest one's age), else what it did for the first that was not."""
    if not others:
        return route.cache, route.cache_age_s
    routes = (route, *others)
    fresh = next((r for r in routes if r.cache != routing_pb2.CACHE_STATUS_HIT), None)
    if fresh is not None:
        return fresh.cache, 0.0
    return route.cache, max(r.cache_age_s for r in routes)


def _tightest(route: RouteInfo, others: tuple[RouteInfo, ...]) -> RateLimitStatus | None:
    """The standing to tell: the route's (one call), else the one with the least left (calls
    made together were counted in some order; the last counted has the least)."""
    if not others:
        return route.rate_limit if route.HasField("rate_limit") else None
    found = [r.rate_limit for r in (route, *others) if r.HasField("rate_limit")]
    return min(found, key=_left, default=None)


def _left(status: RateLimitStatus) -> tuple[float, float]:
    requests = status.remaining_requests if status.HasField("remaining_requests") else math.inf
    tokens = status.remaining_tokens if status.HasField("remaining_tokens") else math.inf
    return requests, tokens


def rate_limit_headers(status: RateLimitStatus) -> dict[str, str]:
    """OpenAI's `x-ratelimit-*` headers of the limits the caller has (requests: rpm; tokens:
    tpm); the resets as OpenAI writes durations."""
    headers = {}
    if status.HasField("limit_requests"):
        headers["x-ratelimit-limit-requests"] = str(status.limit_requests)
        headers["x-ratelimit-remaining-requests"] = str(status.remaining_requests)
        headers["x-ratelimit-reset-requests"] = duration_text(status.reset_requests_s)
    if status.HasField("limit_tokens"):
        headers["x-ratelimit-limit-tokens"] = str(status.limit_tokens)
        headers["x-ratelimit-remaining-tokens"] = str(status.remaining_tokens)
        headers["x-ratelimit-reset-tokens"] = duration_text(status.reset_tokens_s)
    return headers


def duration_text(seconds: float) -> str:
    """A wait as OpenAI's reset headers write it (Go's durations): "20ms", "1s", "1.5s",
    "6m0s", "1h2m3s"; rounded up to the millisecond, so that waiting it is never too short."""
    if not math.isfinite(seconds) or seconds <= 0:
        return "0s"
    millis = math.ceil(round(seconds * 1000, 6))  # 50.0 s is 50000 ms, not 50001
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0") + "s" if fraction else f"{whole}s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def cost_text(usd: float) -> str:
    """A cost as a header shows it: fixed-point, never `1e-05`, to a millionth of a cent."""
    text = f"{usd:.8f}".rstrip("0").rstrip(".")
    return text or "0"
