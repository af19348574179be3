"""What travels between HTTP headers and the router besides the payload.

Requests: what the edge forwards to the router as gRPC metadata.

Only the caller's identity and correlation headers travel: `authorization` (the router
authenticates), `x-session-id` (sticky routing), `x-request-id` (correlation) and the peer address
as `x-forwarded-for` (uvicorn already resolved trusted proxies' X-Forwarded-For into it). Two
become RoutingOptions fields: `x-session-id`, and what the caller allows the response cache
(`x-switchboard-cache: bypass | off`, or HTTP's `Cache-Control: no-cache | no-store`).

What an answer's headers say of its route and of the caller's limits is `_headers`'s.
"""

from __future__ import annotations

from fastapi import Request
from starlette.requests import HTTPConnection

from clients import MAX_SESSION_ID_BYTES
from clients.switchboard.v1 import routing_pb2
from clients.switchboard.v1.routing_pb2 import RoutingOptions

from ._errors import EdgeError

__all__ = [
    "Metadata",
    "checked_header",
    "forwarded_metadata",
    "routing_options",
    "session_id",
    "with_api_key",
    "with_google_key",
    "with_key",
]

Metadata = tuple[tuple[str, str], ...]

# Each forwarded header's largest value. gRPC refuses a call whose metadata passes 16 KiB
# (`clients.MAX_METADATA_BYTES`, the router's soft and hard limit), as RESOURCE_EXHAUSTED;
# its own headers, `traceparent` and the peer address take a few hundred bytes more. Refused
# here instead, with the header's name, before the router is called.
# (x-session-id's own, shorter, limit is the router's: `session_id` refuses it first, as a 400.)
_FORWARDED_HEADERS = {
    "authorization": 4096,
    "x-session-id": MAX_SESSION_ID_BYTES,
    "x-request-id": 1024,
}
# The peer address's: a host name is at most 253 bytes, an IPv6 address 45.
_PEER_ADDRESS_BYTES = 256


# The request headers the edge reads, picked in one pass over the ASGI header list and kept in the
# scope: Starlette's `headers.get` walks the list once per name, six walks per call (~5 µs with
# the dozen-odd headers an SDK sends, against ~1 for one pass).
_READ = frozenset(
    name.encode() for name in (*_FORWARDED_HEADERS, "x-switchboard-cache", "cache-control")
)
_PICKED = "switchboard.headers"
# The header read whole when sent on several lines (the others: their first line).
_LISTED = b"cache-control"


def _picked(request: HTTPConnection) -> dict[str, str]:
    scope = request.scope
    picked: dict[str, str] | None = scope.get(_PICKED)
    if picked is None:
        picked = {}
        for name, value in scope["headers"]:
            if name in _READ:
                key = name.decode("latin-1")
                if key not in picked:
                    picked[key] = value.decode("latin-1")
                elif name == _LISTED:  # a list on two lines is one (RFC 9110): a proxy's too
                    picked[key] += ", " + value.decode("latin-1")
        scope[_PICKED] = picked
    return picked


_CACHE_MODES = {"bypass": routing_pb2.CACHE_MODE_BYPASS, "off": routing_pb2.CACHE_MODE_OFF}
# HTTP's words for the same: no-cache (and max-age=0: `_directive_mode`) asks for a fresh
# answer, no-store for nothing kept.
_CACHE_CONTROL = {"no-cache": routing_pb2.CACHE_MODE_BYPASS, "no-store": routing_pb2.CACHE_MODE_OFF}


def routing_options(request: Request) -> RoutingOptions:
    """The caller's routing options: its session and what it allows the response cache."""
    mode = _cache_mode(request)
    if mode:
        return RoutingOptions(session_id=session_id(request), cache=mode)
    return RoutingOptions(session_id=session_id(request))


def _cache_mode(request: Request) -> routing_pb2.CacheMode.ValueType:
    """What the caller allows the cache: the stricter of `x-switchboard-cache` and
    `Cache-Control` when both are sent (a `no-store` an HTTP library adds keeps nothing,
    whatever the header beside it asks)."""
    headers = _picked(request)
    mode: routing_pb2.CacheMode.ValueType = routing_pb2.CACHE_MODE_UNSPECIFIED
    value = headers.get("x-switchboard-cache")
    if value is not None:
        asked = _CACHE_MODES.get(value.strip().lower())
        if asked is None:
            raise EdgeError(
                400,
                "Header x-switchboard-cache must be `bypass` (ask the upstream, keep the fresh "
                "answer) or `off` (neither read nor kept).",
                code="invalid_header",
                param="x-switchboard-cache",
            )
        mode = asked
    control = headers.get("cache-control")
    if control:  # rare: the common case makes no list
        directives = [d.strip() for d in control.lower().split(",")]
        modes = [_directive_mode(d) for d in directives]
        mode = max(mode, *modes)  # off (no-store) wins
    return mode


def _directive_mode(directive: str) -> routing_pb2.CacheMode.ValueType:
    """What one `Cache-Control` directive asks of the cache: `max-age=0` takes no answer kept
    before now (RFC 9111 5.2.1.1: what `fetch(…, {cache: "no-cache"})` and a reload send), as
    `no-cache`; another age is not told the router (unset: a kept answer of any age serves)."""
    name, _, argument = directive.partition("=")
    if name.strip() == "max-age":
        age = argument.strip().strip('"')
        fresh = age != "" and not age.strip("0")  # zero in any digits (`int` may refuse some)
        return routing_pb2.CACHE_MODE_BYPASS if fresh else routing_pb2.CACHE_MODE_UNSPECIFIED
    return _CACHE_CONTROL.get(directive, routing_pb2.CACHE_MODE_UNSPECIFIED)


def session_id(request: HTTPConnection) -> str:
    """The caller's session name (`x-session-id`), or "" to let the router derive one. An
    absurdly long one is refused here, by its header's name (the router refuses it too)."""
    value = _picked(request).get("x-session-id", "")
    if len(value.encode()) > MAX_SESSION_ID_BYTES:
        raise EdgeError(
            400,
            f"Header x-session-id is {len(value.encode())} bytes long; at most "
            f"{MAX_SESSION_ID_BYTES} are allowed.",
            code="session_id_too_long",
            param="x-session-id",
        )
    return value


def forwarded_metadata(request: HTTPConnection) -> Metadata:
    """gRPC metadata for one call: the forwarded headers plus the peer address."""
    pairs: list[tuple[str, str]] = []
    headers = _picked(request)
    for name, limit in _FORWARDED_HEADERS.items():
        value = headers.get(name)
        if value:
            pairs.append((name, _checked(name, value, limit)))
    if request.client is not None and request.client.host:
        # What a trusted proxy's X-Forwarded-For named (uvicorn's reading): the caller's own
        # words when it called from a trusted address, which gRPC refuses unless printable ASCII.
        peer = _checked("x-forwarded-for", request.client.host, _PEER_ADDRESS_BYTES)
        pairs.append(("x-forwarded-for", peer))
    return tuple(pairs)


def with_api_key(request: Request, metadata: Metadata) -> Metadata:
    """`metadata` with Anthropic's `x-api-key` as the caller's bearer key, when no
    `Authorization` header gave one: Anthropic's SDKs and Claude Code send their key there."""
    return with_key(metadata, request.headers.get("x-api-key"), "x-api-key")


def with_google_key(request: Request, metadata: Metadata) -> Metadata:
    """`metadata` with Google's `x-goog-api-key` (what the google-genai SDK sends), or else its
    `?key=` query parameter, as the caller's bearer key, when no `Authorization` header gave
    one."""
    key = request.headers.get("x-goog-api-key")
    if key:
        return with_key(metadata, key, "x-goog-api-key")
    return with_key(metadata, request.query_params.get("key"), "key")


def with_key(metadata: Metadata, key: str | None, source: str) -> Metadata:
    """`metadata` with `key` (from where `source` names) as the caller's bearer key, unless an
    `Authorization` header gave one."""
    if not key or any(name == "authorization" for name, _ in metadata):
        return metadata
    bearer = _checked(source, key, _FORWARDED_HEADERS["authorization"] - len("Bearer "))
    return (("authorization", f"Bearer {bearer}"), *metadata)


def forwardable(name: str, value: str) -> bool:
    """Whether the edge forwards this value of a forwarded header as it is (the request id
    echoes only such a one)."""
    limit = _FORWARDED_HEADERS[name]
    return 0 < len(value) <= limit and value.isascii() and value.isprintable()


def checked_header(name: str, value: str) -> str:
    """A forwarded header's value, refused (EdgeError) when too long or not printable ASCII."""
    return _checked(name, value, _FORWARDED_HEADERS[name])


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
