"""The error contract between the router and its callers, in both directions.

A failed router call travels as a gRPC status code plus ``google.rpc.Status`` details in the
trailers: ``ErrorInfo`` (``reason`` = an Outcome name without ``OUTCOME_``, or another reason word
such as ``MODEL_NOT_FOUND``; ``domain`` = ``switchboard``; string metadata ``provider``,
``upstream_status``, ``openai_type``, ``openai_code``, ``openai_param``, ``upstream_error``,
``guardrail``: the rule that refused the call),
``RetryInfo`` when a retry may help and ``BadRequest`` for invalid fields; a client refused for
its own rpm or tpm finds where it stands in ``ErrorInfo`` metadata too (``ratelimit_*``:
``clients._ratelimits``; the edge writes it as OpenAI's ``x-ratelimit-*`` headers). The router
builds the
status with :func:`to_grpc_status`; callers read it back with :func:`details_from_rpc_error`; the
HTTP edge turns it into OpenAI's error JSON with :func:`http_status_for` and
:func:`openai_error_body`. Other languages read the same details with their own googleapis types.

Exception tree (everything this package raises on purpose)::

    SwitchboardClientError
    ├── RouterError             a router call failed; carries ErrorDetails, gRPC and HTTP status
    ├── InvalidRequestError     a caller's OpenAI JSON is malformed (also a ValueError; HTTP 400)
    └── UpstreamFormatError     an upstream's OpenAI JSON is malformed (also a ValueError)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc
import orjson
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from clients._grpc_http import HTTP_STATUS_BY_CODE, grpc_code_for_http
from clients._ratelimits import rate_limit_from_metadata, rate_limit_metadata
from clients.switchboard.v1.routing_pb2 import RateLimitStatus

__all__ = [
    "ERROR_DOMAIN",
    "ErrorDetails",
    "InvalidRequestError",
    "RouterError",
    "SwitchboardClientError",
    "UpstreamFormatError",
    "details_from_rpc_error",
    "grpc_code_for_http",
    "http_status_for",
    "openai_error_body",
    "to_grpc_status",
]

ERROR_DOMAIN = "switchboard"
_DETAILS_KEY = "grpc-status-details-bin"
# Status details ride in the trailers, and gRPC refuses metadata beyond a few KiB (16 KiB on
# our channels, `MAX_METADATA_BYTES`; now and then past 8 KiB with grpc's defaults, another
# caller's). The message, the BadRequest violations (which quote what was sent) and the
# passed-through upstream error are bounded so that an upstream's chatty error page, or a
# caller's long value quoted back, cannot turn into an unreadable RESOURCE_EXHAUSTED.
_MAX_MESSAGE_BYTES = 1024
_MAX_UPSTREAM_ERROR_BYTES = 2048
_OPENAI_ERROR_KEYS = ("message", "type", "param", "code")
# google.protobuf.Duration's range: ±10,000 years.
_MAX_DURATION_S = 315_576_000_000

# OpenAI's error `type` for an HTTP status, when the router did not name one.
_OPENAI_TYPE: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    422: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout",
}
# gRPC's own refusals of what is over its size limits (`_bare_reason`): a request that can never
# pass, not the router's rate limit that shares their code (RESOURCE_EXHAUSTED, HTTP 429).
_SIZE_LIMITS: dict[str, int] = {"METADATA_TOO_LARGE": 400, "MESSAGE_TOO_LARGE": 413}


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """Everything a caller learns about a failed router call, independent of the transport."""

    code: grpc.StatusCode
    message: str
    reason: str
    openai_type: str | None = None
    openai_code: str | None = None
    openai_param: str | None = None
    provider: str | None = None
    upstream_status: int | None = None
    # The upstream's own error JSON, passed through verbatim to HTTP callers.
    upstream_error: dict[str, Any] | None = None
    retry_after_s: float | None = None
    field_violations: tuple[tuple[str, str], ...] = ()
    # Where the caller stands against its rpm and tpm, on a refusal by them.
    rate_limit: RateLimitStatus | None = None
    # The `guardrails:` rule that refused the call (ErrorInfo metadata `guardrail`).
    guardrail: str | None = None
    # No google.rpc.Status came with it: gRPC's own status (a router it cannot reach, a deadline,
    # a size limit) or a foreign server's. The message is gRPC's text, which names internal
    # addresses and metadata.
    bare: bool = False
    # A bare UNAVAILABLE for a call gRPC does not send again (not a read) that went out on an open
    # connection: the router may have taken, run and billed it before the connection dropped.
    maybe_run: bool = False


class SwitchboardClientError(Exception):
    """Root of every error the clients package raises on purpose."""


class RouterError(SwitchboardClientError):
    """A router call failed. ``str(err)`` is the router's message."""

    def __init__(self, details: ErrorDetails) -> None:
        super().__init__(details.message)
        self.details = details
        self.grpc_code: grpc.StatusCode = details.code
        self.http_status: int = http_status_for(details)

    def __reduce__(self) -> tuple[type[RouterError], tuple[ErrorDetails]]:
        return (type(self), (self.details,))

    @property
    def reason(self) -> str:
        """The ``ErrorInfo.reason``: an Outcome name (``RATE_LIMITED``) or another reason word."""
        return self.details.reason


class InvalidRequestError(SwitchboardClientError, ValueError):
    """A caller's request body does not have OpenAI's shape; the edge answers HTTP 400."""

    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INVALID_ARGUMENT
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def to_details(self) -> ErrorDetails:
        """The same error as the router reports it, so both entrances answer alike."""
        violations = ((self.param, self.message),) if self.param else ()
        return ErrorDetails(
            code=self.grpc_code,
            message=self.message,
            reason="INVALID_ARGUMENT",
            openai_type="invalid_request_error",
            openai_param=self.param,
            field_violations=violations,
        )


class UpstreamFormatError(SwitchboardClientError, ValueError):
    """An upstream answered with JSON that is not OpenAI's shape; the router classifies it."""

    # A broken upstream is the upstream's fault and another candidate may work.
    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNAVAILABLE
    http_status: ClassVar[int] = 503

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def to_grpc_status(details: ErrorDetails) -> grpc.Status:
    """The status a servicer aborts with: ``await context.abort_with_status(to_grpc_status(d))``."""
    if details.code is grpc.StatusCode.OK:
        raise ValueError("an error status cannot have code OK")
    message = _truncate_utf8(details.message, _MAX_MESSAGE_BYTES)
    status = status_pb2.Status(code=details.code.value[0], message=message)
    status.details.append(
        _packed(
            error_details_pb2.ErrorInfo(
                reason=details.reason,
                domain=ERROR_DOMAIN,
                metadata=_info_metadata(details),
            )
        )
    )
    delay = _retry_delay(details.retry_after_s)
    if delay is not None:
        status.details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    if details.field_violations:
        bad = error_details_pb2.BadRequest()
        for field, description in details.field_violations:
            # A description quotes what was sent, as the message does, and is bounded alike.
            bad.field_violations.add(
                field=_truncate_utf8(field, _MAX_MESSAGE_BYTES),
                description=_truncate_utf8(description, _MAX_MESSAGE_BYTES),
            )
        status.details.append(_packed(bad))
    rich = rpc_status.to_status(status)
    if details.code is grpc.StatusCode.UNAVAILABLE:
        # The router answered: a client's retry policy must not run the routing again.
        pushback = (*rich.trailing_metadata, (RETRY_PUSHBACK, "-1"))
        return rich._replace(trailing_metadata=pushback)
    return rich


# gRPC's server pushback (A6 retry design): a negative value tells the client not to retry.
RETRY_PUSHBACK = "grpc-retry-pushback-ms"


def details_from_rpc_error(err: grpc.RpcError) -> ErrorDetails:
    """Read :class:`ErrorDetails` back from a failed call, sync or ``grpc.aio``.

    Errors that carry no ``google.rpc.Status`` of their code (a dead channel, a deadline, a size
    limit, a foreign server) are ``bare``, with gRPC's own message and the status code's name as
    their reason (``METADATA_TOO_LARGE`` or ``MESSAGE_TOO_LARGE`` for gRPC's size refusals).
    """
    code = _call_attr(err, "code") or grpc.StatusCode.UNKNOWN
    message = _call_attr(err, "details") or ""
    status = _rich_status(_call_attr(err, "trailing_metadata") or ())
    # One of another code is not the call's (grpc's own `rpc_status.from_call` refuses it): an
    # answer grpc refused (its trailers past a size limit) still hands its trailers over.
    if status is None or status.code != code.value[0]:
        return ErrorDetails(code, message, _bare_reason(code, message), bare=True)
    info = error_details_pb2.ErrorInfo()
    retry: float | None = None
    violations: list[tuple[str, str]] = []
    for packed in status.details:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            packed.Unpack(info)
        elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry_info = error_details_pb2.RetryInfo()
            packed.Unpack(retry_info)
            retry = retry_info.retry_delay.ToNanoseconds() / 1e9
        elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            packed.Unpack(bad)
            violations.extend((v.field, v.description) for v in bad.field_violations)
    meta = dict(info.metadata)
    return ErrorDetails(
        code=code,
        message=status.message or message,
        reason=info.reason or code.name,
        openai_type=meta.get("openai_type"),
        openai_code=meta.get("openai_code"),
        openai_param=meta.get("openai_param"),
        provider=meta.get("provider"),
        upstream_status=_parse_int(meta.get("upstream_status")),
        upstream_error=_parse_object(meta.get("upstream_error")),
        retry_after_s=retry,
        field_violations=tuple(violations),
        rate_limit=rate_limit_from_metadata(meta),
        guardrail=meta.get("guardrail"),
    )


def http_status_for(details: ErrorDetails) -> int:
    """The HTTP status an OpenAI caller sees; the upstream's own when its error is passed on."""
    upstream = details.upstream_status
    if details.upstream_error is not None and upstream is not None and 400 <= upstream <= 599:
        return upstream
    if details.bare and details.reason in _SIZE_LIMITS:
        return _SIZE_LIMITS[details.reason]
    if details.reason == "FILE_TOO_LARGE":  # OUT_OF_RANGE is a 400; a file's bound, OpenAI's 413
        return 413
    if details.reason == "BATCH_NOT_CANCELLABLE":  # FAILED_PRECONDITION is a 400; OpenAI's 409
        return 409
    return HTTP_STATUS_BY_CODE.get(details.code, 500)


def _bare_reason(code: grpc.StatusCode, message: str) -> str:
    """A bare status's reason: its code's name, but for gRPC's size refusals, which have the
    code a router's rate limit has ("received metadata size exceeds hard limit", "Sent message
    larger than max") and which no retry gets past."""
    if code is not grpc.StatusCode.RESOURCE_EXHAUSTED:
        return str(code.name)
    return "METADATA_TOO_LARGE" if "metadata" in message.lower() else "MESSAGE_TOO_LARGE"


def openai_error_body(details: ErrorDetails) -> dict[str, Any]:
    """OpenAI's error JSON, ``{"error": {"message", "type", "param", "code"}}``.

    A passed-through upstream error is returned as the upstream sent it (wrapped in ``error`` when
    it is not already), because OpenAI SDKs and users match on the upstream's own codes.
    ``code`` defaults to the lower-cased reason (``model_not_found``, ``rate_limited``).
    """
    upstream = details.upstream_error
    if upstream is not None:
        inner = upstream.get("error")
        if isinstance(inner, dict):
            return upstream
        if not isinstance(inner, str):
            return {"error": upstream}
    status = http_status_for(details)
    default_type = "server_error" if 500 <= status <= 599 else "api_error"
    return {
        "error": {
            "message": details.message,
            "type": details.openai_type or _OPENAI_TYPE.get(status, default_type),
            "param": details.openai_param,
            "code": details.openai_code or details.reason.lower(),
        }
    }


def _retry_delay(seconds: float | None) -> duration_pb2.Duration | None:
    """RetryInfo's delay, whatever number it is handed: an error status must always be built
    (`inf` would raise OverflowError, a delay past Duration's range would not serialise)."""
    if seconds is None or not math.isfinite(seconds):
        return None
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(round(min(max(seconds, 0.0), _MAX_DURATION_S) * 1e9))
    return delay


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _info_metadata(details: ErrorDetails) -> dict[str, str]:
    meta = {
        "provider": details.provider,
        "openai_type": details.openai_type,
        "openai_code": details.openai_code,
        "openai_param": details.openai_param,
        "upstream_status": None
        if details.upstream_status is None
        else str(details.upstream_status),
        "upstream_error": _bounded_upstream_error(details.upstream_error),
        "guardrail": details.guardrail,
    }
    return {
        **{key: value for key, value in meta.items() if value is not None},
        **rate_limit_metadata(details.rate_limit),
    }


def _bounded_upstream_error(error: dict[str, Any] | None) -> str | None:
    """The upstream error as compact JSON; trimmed to OpenAI's four keys when it is too large."""
    if error is None:
        return None
    data = orjson.dumps(error)
    if len(data) <= _MAX_UPSTREAM_ERROR_BYTES:
        return data.decode()
    wrapped = isinstance(error.get("error"), dict)
    inner: dict[str, Any] = error["error"] if wrapped else error
    small = {key: inner[key] for key in _OPENAI_ERROR_KEYS if key in inner}
    if isinstance(small.get("message"), str):
        small["message"] = _truncate_utf8(small["message"], _MAX_UPSTREAM_ERROR_BYTES // 2)
    data = orjson.dumps({"error": small} if wrapped else small)
    return data.decode() if len(data) <= _MAX_UPSTREAM_ERROR_BYTES else None


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "..."


def _call_attr(err: grpc.RpcError, name: str) -> Any:
    """``err.code()`` and friends; a bare ``RpcError`` that is not a call has none of them."""
    method = getattr(err, name, None)
    return method() if callable(method) else None


def _rich_status(trailers: Any) -> status_pb2.Status | None:
    for key, value in trailers:
        if key == _DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except DecodeError:  # a foreign server's garbage is no reason to crash
                return None
    return None


def _parse_int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def _parse_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
