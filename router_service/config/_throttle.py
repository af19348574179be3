"""How failed authentications are throttled: admin ones (the edge's `/admin` token, the router's
AdminService keys: one model, read by the edge's section and the router's `auth:` alike), and
the router's client keys on its other services."""

from __future__ import annotations

from pydantic import Field

from router_service.config._base import _Strict

__all__ = ["AdminThrottleConfig", "KeyThrottleConfig"]


class _Windowed(_Strict):
    window_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="How long a window lasts, from the failure that opens it.",
    )


class AdminThrottleConfig(_Windowed):
    """Failed admin authentications, counted per client address and overall in fixed windows
    (each opened by its first failure). Past a limit, admin calls are refused (HTTP 429 with
    Retry-After, gRPC RESOURCE_EXHAUSTED with RetryInfo) before any token is compared, until
    the window ends; a success forgets its address's failures. Per process (each edge, each
    router replica counts its own)."""

    per_address: int = Field(
        default=10,
        ge=1,
        description="Failed admin authentications one client address (an IPv6 one by its /64) "
        "may make per window; then every admin call from it is refused until the window ends, "
        "the right token too (it could be the guess that lands).",
    )
    overall: int = Field(
        default=100,
        ge=1,
        description="Failed admin authentications from all addresses together per window; then "
        "every admin call is refused until the window ends, from any address and with the right "
        "token too: an attacker with many addresses can lock the operator out for a window, "
        "never guess on. It also bounds what is kept: at most this many addresses.",
    )


class KeyThrottleConfig(_Windowed):
    """Wrong client keys on every router service, counted per caller address in fixed windows
    (each opened by its first failure), with no overall limit (past one, anyone could stop every
    caller). Past the limit every call from the address is refused (gRPC RESOURCE_EXHAUSTED with
    RetryInfo, HTTP 429 with Retry-After through the edge) before its key is looked up, until the
    window ends; a right key does not clear the count (a caller with a key of its own could
    otherwise guess on between its own calls). Per router process."""

    per_address: int = Field(
        default=30,
        ge=1,
        description="Wrong client keys one caller address (an IPv6 one by its /64) may send per "
        "window; then every call from it is refused until the window ends, the right key too "
        "(it could be the guess that lands). A missing key, or a known one without the "
        "method's scope, is no guess.",
    )
    addresses: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Most addresses kept (those whose windows opened first are dropped): what "
        "an attacker rotating through addresses can make the router hold.",
    )
