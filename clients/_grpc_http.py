"""gRPC status codes ⇄ HTTP statuses: googleapis google/rpc/code.proto's "HTTP Mapping", both
ways (`clients.errors` says a router error's status with it; the Gemini entrance names a status
the edge gives itself as Google's APIs do, by its code)."""

from __future__ import annotations

import grpc

__all__ = ["HTTP_STATUS_BY_CODE", "grpc_code_for_http"]

# googleapis google/rpc/code.proto, "HTTP Mapping" of each code.
HTTP_STATUS_BY_CODE: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
# The other way round, for a status the edge gives itself (no gRPC code said it): the code the
# mapping lists first for it, but INTERNAL (not UNKNOWN) for a 500.
_CODE_FOR_HTTP: dict[int, grpc.StatusCode] = {
    status: code for code, status in reversed(HTTP_STATUS_BY_CODE.items())
} | {500: grpc.StatusCode.INTERNAL}


def grpc_code_for_http(status: int) -> grpc.StatusCode:
    """The gRPC code an HTTP status stands for (google/rpc/code.proto's mapping, read back):
    what Google's APIs name in an error's `status`. INVALID_ARGUMENT or INTERNAL for a 4xx or a
    5xx the mapping does not list (413, 431, 502)."""
    code = _CODE_FOR_HTTP.get(status)
    if code is not None:
        return code
    return grpc.StatusCode.INTERNAL if status >= 500 else grpc.StatusCode.INVALID_ARGUMENT
