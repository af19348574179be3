"""What travels between HTTP headers and the router besides the payload.

Requests: what the edge forwards to the router as gRPC metadata.

Only the caller's identity and correlation headers travel: `authorization` (the router
authenticates), `x-session-id` (sticky routing), `x-request-id` (correlation) and the peer address
as `x-forwarded-for` (uvicorn already resolved trusted proxies' X-Forwarded-For into it).

Responses: the route the router took, as `x-switchboard-*` headers.
"""

from __future__ import annotations

from fastapi import Request

from clients.switchboard.v1.routing_pb2 import RouteInfo
from router_service.sessions import MAX_SESSION_ID_BYTES

from ._errors import EdgeError

__all__ = ["Metadata", "forwarded_metadata", "route_headers", "session_id"]

Metadata = tuple[tuple[str, str], ...]

# Each forwarded header's largest value. gRPC refuses a call whose metadata passes 8 KiB now and
# then and 16 KiB always (the router's `grpc.max_metadata_size` defaults), as RESOURCE_EXHAUSTED;
# its own headers, `traceparent` and the peer address take a few hundred bytes more. Refused
# here instead, with the header's name, before the router is called.
# (x-session-id's own, shorter, limit is the router's: `session_id` refuses it first, as a 400.)
_FORWARDED_HEADERS = {
    "authorization": 4096,
    "x-session-id": MAX_SESSION_ID_BYTES,
    "x-request-id": 1024,
}


def session_id(request: Request) -> str:
    """The caller's session name (`x-session-id`), or "" to let the router derive one. An
    absurdly long one is refused here, by its header's name (the router refuses it too)."""
    value = request.headers.get("x-session-id", "")
    if len(value.encode()) > MAX_SESSION_ID_BYTES:
        raise EdgeError(
            400,
            f"Header x-session-id is {len(value.encode())} bytes long; at most "
            f"{MAX_SESSION_ID_BYTES} are allowed.",
            code="session_id_too_long",
            param="x-session-id",
        )
    return value


def forwarded_metadata(request: Request) -> Metadata:
    """gRPC metadata for one call: the forwarded headers plus the peer address."""
    pairs: list[tuple[str, str]] = []
    for name, limit in _FORWARDED_HEADERS.items():
        value = request.headers.get(name)
        if value:
            pairs.append((name, _checked(name, value, limit)))
    if request.client is not None and request.client.host:
        pairs.append(("x-forwarded-for", request.client.host))
    return tuple(pairs)


def forwardable(name: str, value: str) -> bool:
    """Whether the edge forwards this value of a forwarded header as it is (the request id
    echoes only such a one)."""
    limit = _FORWARDED_HEADERS[name]
    return 0 < len(value) <= limit and value.isascii() and value.isprintable()


def _checked(name: str, value: str, limit: int) -> str:
    if len(value) > limit:  # ASCII below: characters are bytes
        message = f"Header {name} is longer than the {limit} bytes the edge forwards."
        raise EdgeError(431, message, code="header_too_large", param=name)
    # gRPC refuses non-printable-ASCII metadata values; say so instead of failing the call.
    if not (value.isascii() and value.isprintable()):
        raise EdgeError(
            400, f"Header {name} must be printable ASCII.", code="invalid_header", param=name
        )
    return value


def route_headers(route: RouteInfo | None) -> dict[str, str]:
    """Response headers naming the deployment that answered and how many attempts it took."""
    if route is None or not route.deployment:
        return {}
    headers = {"x-switchboard-attempts": str(len(route.attempts))}
    if route.deployment.isascii() and route.deployment.isprintable():
        headers["x-switchboard-deployment"] = route.deployment
    return headers
