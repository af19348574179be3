"""The error contract: ErrorDetails → google.rpc.Status over a real gRPC server → ErrorDetails,
and the HTTP side (status table, OpenAI error bodies)."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from clients import (
    ErrorDetails,
    RouterClient,
    RouterError,
    details_from_rpc_error,
    http_status_for,
    openai_error_body,
    to_grpc_status,
)
from clients.switchboard.v1 import router_service_pb2, router_service_pb2_grpc
from clients.switchboard.v1.routing_pb2 import RateLimitStatus
from tests.helpers import serve_grpc

Code = grpc.StatusCode


class AbortingRouter(router_service_pb2_grpc.RouterServiceServicer):
    """Every Chat aborts with the status the test put in ``self.status`` (or a plain abort)."""

    def __init__(self) -> None:
        self.status: grpc.Status | None = None
        self.plain: tuple[grpc.StatusCode, str] | None = None

    async def Chat(
        self, request: router_service_pb2.ChatRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ChatResponse:
        if self.plain is not None:
            await context.abort(*self.plain)
        assert self.status is not None
        await context.abort_with_status(self.status)
        raise AssertionError("unreachable")


@pytest.fixture
async def aborting() -> AsyncIterator[tuple[AbortingRouter, str]]:
    servicer = AbortingRouter()  # type: ignore[abstract]  # only Chat is called
    async with serve_grpc(
        (router_service_pb2_grpc.add_RouterServiceServicer_to_server, servicer)
    ) as target:
        yield servicer, target


FULL = ErrorDetails(
    code=Code.RESOURCE_EXHAUSTED,
    message="Rate limit reached for gpt-4o — café ☕",
    reason="RATE_LIMITED",
    openai_type="rate_limit_error",
    openai_code="rate_limit_exceeded",
    openai_param="model",
    provider="openai",
    upstream_status=429,
    upstream_error={"error": {"message": "slow down", "type": "rate_limit_error", "code": 1}},
    retry_after_s=1.5,
    field_violations=(("messages[0].content", "too long"), ("temperature", "too hot")),
)
ROUND_TRIP_CASES = [
    FULL,
    ErrorDetails(code=Code.NOT_FOUND, message="no such model: gpt-9", reason="MODEL_NOT_FOUND"),
    ErrorDetails(code=Code.UNAVAILABLE, message="", reason="NO_CAPACITY", retry_after_s=0.25),
    ErrorDetails(
        code=Code.INVALID_ARGUMENT,
        message="bad",
        reason="BAD_REQUEST",
        upstream_status=400,
        upstream_error={"type": "error", "error": {"type": "invalid_request_error"}},
    ),
    ErrorDetails(code=Code.UNAUTHENTICATED, message="missing key", reason="UNAUTHENTICATED"),
    ErrorDetails(  # a client over its own rpm: where it stands, as a detail of our own type
        code=Code.RESOURCE_EXHAUSTED,
        message="Rate limit reached for client 'app'",
        reason="RATE_LIMITED",
        retry_after_s=50.0,
        rate_limit=RateLimitStatus(limit_requests=3, remaining_requests=0, reset_requests_s=50),
    ),
]


@pytest.mark.parametrize("details", ROUND_TRIP_CASES)
async def test_details_round_trip_over_a_real_server(
    aborting: tuple[AbortingRouter, str], details: ErrorDetails
) -> None:
    servicer, target = aborting
    servicer.status = to_grpc_status(details)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Chat(router_service_pb2.ChatRequest())
    assert details_from_rpc_error(info.value) == details


async def test_router_client_raises_router_error_with_details(
    aborting: tuple[AbortingRouter, str],
) -> None:
    servicer, target = aborting
    servicer.status = to_grpc_status(FULL)
    async with RouterClient(target) as client:
        with pytest.raises(RouterError) as info:
            await client.chat(router_service_pb2.ChatRequest())
    err = info.value
    assert (err.details, err.grpc_code, err.http_status, err.reason) == (
        FULL,
        Code.RESOURCE_EXHAUSTED,
        429,
        "RATE_LIMITED",
    )
    assert str(err) == FULL.message
    assert isinstance(err.__cause__, grpc.RpcError)


async def test_errors_without_details_use_the_code_name(
    aborting: tuple[AbortingRouter, str],
) -> None:
    servicer, target = aborting
    servicer.plain = (Code.PERMISSION_DENIED, "admins only")
    async with RouterClient(target) as client:
        with pytest.raises(RouterError) as info:
            await client.chat(router_service_pb2.ChatRequest())
    assert info.value.details == ErrorDetails(
        code=Code.PERMISSION_DENIED, message="admins only", reason="PERMISSION_DENIED", bare=True
    )


async def test_grpcs_own_metadata_size_refusal_is_400_not_a_rate_limit(
    aborting: tuple[AbortingRouter, str],
) -> None:
    _, target = aborting
    async with RouterClient(target) as client:
        with pytest.raises(RouterError) as info:
            # Over the receiving server's hard limit (16 KiB): refused by gRPC, before any handler.
            metadata = (("x-session-id", "s" * 60_000),)
            await client.chat(router_service_pb2.ChatRequest(), metadata=metadata)
    err = info.value
    assert (err.grpc_code, err.reason, err.http_status) == (
        Code.RESOURCE_EXHAUSTED,
        "METADATA_TOO_LARGE",
        400,
    )
    assert err.details.bare
    assert openai_error_body(err.details)["error"]["type"] == "invalid_request_error"


async def test_grpcs_own_message_size_refusal_is_413_not_a_rate_limit(
    aborting: tuple[AbortingRouter, str],
) -> None:
    _, target = aborting
    request = router_service_pb2.ChatRequest()
    request.params.model = "m" * 4096
    async with RouterClient(target, max_message_bytes=1024) as client:
        with pytest.raises(RouterError) as info:
            await client.chat(request)
    assert (info.value.reason, info.value.http_status) == ("MESSAGE_TOO_LARGE", 413)


@pytest.mark.parametrize("filler", ["x", "☕"])
async def test_huge_upstream_error_is_trimmed_to_fit_the_trailers(
    aborting: tuple[AbortingRouter, str], filler: str
) -> None:
    servicer, target = aborting
    page = "<html>" + filler * 50_000
    upstream = {"error": {"message": page, "type": "server_error", "code": None, "html": page}}
    servicer.status = to_grpc_status(
        ErrorDetails(
            code=Code.UNAVAILABLE,
            message=page,
            reason="UPSTREAM_ERROR",
            upstream_status=502,
            upstream_error=upstream,
        )
    )
    async with RouterClient(target) as client:
        with pytest.raises(RouterError) as info:
            await client.chat(router_service_pb2.ChatRequest())
    got = info.value.details
    assert got.reason == "UPSTREAM_ERROR"
    assert got.message.startswith("<html>" + filler * 3)
    assert len(got.message.encode()) <= 1024
    assert got.upstream_error is not None
    assert set(got.upstream_error["error"]) == {"message", "type", "code"}
    assert info.value.http_status == 502


def test_status_details_are_googleapis_types() -> None:
    """Other languages read the same details with their own google.rpc types."""
    status = to_grpc_status(FULL)
    ((key, value),) = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    rich = status_pb2.Status.FromString(value)
    assert (rich.code, rich.message) == (Code.RESOURCE_EXHAUSTED.value[0], FULL.message)
    info = error_details_pb2.ErrorInfo()
    assert rich.details[0].Unpack(info)
    assert (info.reason, info.domain, info.metadata["upstream_status"]) == (
        "RATE_LIMITED",
        "switchboard",
        "429",
    )
    retry = error_details_pb2.RetryInfo()
    assert rich.details[1].Unpack(retry)
    assert retry.retry_delay.ToMilliseconds() == 1500


def _retry_delays(status: grpc.Status) -> list[float]:
    ((_, value),) = status.trailing_metadata
    delays = []
    for packed in status_pb2.Status.FromString(value).details:
        retry = error_details_pb2.RetryInfo()
        if packed.Unpack(retry):
            delays.append(retry.retry_delay.ToNanoseconds() / 1e9)
    return delays


@pytest.mark.parametrize(
    ("retry_after_s", "delays"),
    [
        (float("inf"), []),  # no number, no RetryInfo: the status is still built
        (float("nan"), []),
        (-3.0, [0.0]),
        (1e300, [315_576_000_000.0]),  # Duration's ceiling (10,000 years)
    ],
)
def test_any_retry_hint_makes_a_status(retry_after_s: float, delays: list[float]) -> None:
    details = ErrorDetails(
        code=Code.RESOURCE_EXHAUSTED, message="m", reason="R", retry_after_s=retry_after_s
    )
    assert _retry_delays(to_grpc_status(details)) == delays


def test_ok_is_not_an_error() -> None:
    with pytest.raises(ValueError, match="OK"):
        to_grpc_status(ErrorDetails(code=Code.OK, message="", reason="OK"))


class BareRpcError(grpc.RpcError):  # type: ignore[misc]  # grpc is untyped
    """An RpcError that is not a call (gRPC raises a few of those)."""


class ForeignRpcError(grpc.RpcError):  # type: ignore[misc]  # grpc is untyped
    """A call error from a server that puts garbage where the status details belong."""

    def code(self) -> grpc.StatusCode:
        return Code.INTERNAL

    def details(self) -> str:
        return "oops"

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return (("grpc-status-details-bin", b"\xff\xff\xff"),)


def test_garbage_status_details_are_ignored() -> None:
    assert details_from_rpc_error(ForeignRpcError()) == ErrorDetails(
        code=Code.INTERNAL, message="oops", reason="INTERNAL", bare=True
    )


def test_router_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(RouterError(FULL)))
    assert (err.details, err.http_status, str(err)) == (FULL, 429, FULL.message)


def test_bare_rpc_error() -> None:
    assert details_from_rpc_error(BareRpcError()) == ErrorDetails(
        code=Code.UNKNOWN, message="", reason="UNKNOWN", bare=True
    )


HTTP_TABLE = [
    (Code.OK, 200),
    (Code.CANCELLED, 499),
    (Code.UNKNOWN, 500),
    (Code.INVALID_ARGUMENT, 400),
    (Code.DEADLINE_EXCEEDED, 504),
    (Code.NOT_FOUND, 404),
    (Code.ALREADY_EXISTS, 409),
    (Code.PERMISSION_DENIED, 403),
    (Code.UNAUTHENTICATED, 401),
    (Code.RESOURCE_EXHAUSTED, 429),
    (Code.FAILED_PRECONDITION, 400),
    (Code.ABORTED, 409),
    (Code.OUT_OF_RANGE, 400),
    (Code.UNIMPLEMENTED, 501),
    (Code.INTERNAL, 500),
    (Code.UNAVAILABLE, 503),
    (Code.DATA_LOSS, 500),
]


def test_http_table_covers_every_code() -> None:
    assert {code for code, _ in HTTP_TABLE} == set(Code)


@pytest.mark.parametrize(("code", "http"), HTTP_TABLE)
def test_http_status_row(code: grpc.StatusCode, http: int) -> None:
    assert http_status_for(ErrorDetails(code=code, message="m", reason=code.name)) == http


def test_http_status_of_a_passed_through_upstream_error() -> None:
    details = ErrorDetails(
        code=Code.INVALID_ARGUMENT,
        message="m",
        reason="BAD_REQUEST",
        upstream_status=422,
        upstream_error={"error": {"message": "m"}},
    )
    assert http_status_for(details) == 422
    # An upstream status alone (no error passed through) does not override the table.
    assert (
        http_status_for(ErrorDetails(Code.UNAVAILABLE, "m", "UPSTREAM_ERROR", upstream_status=500))
        == 503
    )


@pytest.mark.parametrize(
    ("code", "openai_type"),
    [
        (Code.INVALID_ARGUMENT, "invalid_request_error"),
        (Code.UNAUTHENTICATED, "authentication_error"),
        (Code.PERMISSION_DENIED, "permission_error"),
        (Code.NOT_FOUND, "not_found_error"),
        (Code.RESOURCE_EXHAUSTED, "rate_limit_error"),
        (Code.DEADLINE_EXCEEDED, "timeout"),
        (Code.UNAVAILABLE, "server_error"),
        (Code.INTERNAL, "server_error"),
        (Code.CANCELLED, "api_error"),
    ],
)
def test_openai_body_default_type(code: grpc.StatusCode, openai_type: str) -> None:
    body = openai_error_body(ErrorDetails(code=code, message="boom", reason="MODEL_NOT_FOUND"))
    assert body == {
        "error": {"message": "boom", "type": openai_type, "param": None, "code": "model_not_found"}
    }


def test_openai_body_from_named_fields() -> None:
    details = ErrorDetails(
        code=Code.INVALID_ARGUMENT,
        message="bad temperature",
        reason="INVALID_ARGUMENT",
        openai_type="invalid_request_error",
        openai_code="invalid_value",
        openai_param="temperature",
    )
    assert openai_error_body(details) == {
        "error": {
            "message": "bad temperature",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_value",
        }
    }


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        (
            {"error": {"message": "x", "type": "invalid_request_error", "extra": [1]}},
            {"error": {"message": "x", "type": "invalid_request_error", "extra": [1]}},
        ),
        ({"message": "x", "code": 400}, {"error": {"message": "x", "code": 400}}),
        (
            {"error": "plain text", "status": 400},
            {
                "error": {
                    "message": "router says",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "bad_request",
                }
            },
        ),
    ],
)
def test_openai_body_passes_upstream_errors_through(
    upstream: dict[str, Any], expected: dict[str, Any]
) -> None:
    details = ErrorDetails(
        code=Code.INVALID_ARGUMENT,
        message="router says",
        reason="BAD_REQUEST",
        upstream_status=400,
        upstream_error=upstream,
    )
    assert openai_error_body(details) == expected
