"""Bedrock's errors → Outcomes: by exception type (header or body), with the words deciding
where the type alone does not; and the adapter's stream: exception messages mid-stream and
broken frames as the upstream's failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from clients.switchboard.v1 import chat_pb2
from router_service.clock import ManualClock
from router_service.config import ProviderConfig
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope
from router_service.providers import BedrockAdapter, ChatCall
from router_service.providers._bedrock_errors import classify, error_type
from router_service.providers._eventstream import encode_message

CLOCK = ManualClock(1_700_000_000.0)


def failure(status: int, kind: str, message: str, **headers: str) -> UpstreamFailure:
    named = {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return classify(status, {"message": message}, httpx.Headers(named | headers), CLOCK)


@pytest.mark.parametrize(
    ("status", "kind", "message", "outcome"),
    [
        (
            429,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
            Outcome.RATE_LIMITED,
        ),
        (
            400,
            "ServiceQuotaExceededException",
            "Your request exceeds the service quota for your account.",
            Outcome.RATE_LIMITED,
        ),
        (
            403,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
            Outcome.MODEL_DENIED,
        ),
        (
            403,
            "AccessDeniedException",
            "User: arn:aws:iam::1:user/x is not authorized to perform: bedrock:InvokeModel on "
            "resource: arn:aws:bedrock:us-east-1::foundation-model/m",
            Outcome.MODEL_DENIED,
        ),
        (
            403,
            "AccessDeniedException",
            "Authentication failed: Please make sure your API Key is valid.",
            Outcome.AUTH_INVALID,
        ),
        (
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            Outcome.AUTH_INVALID,
        ),
        (
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
            Outcome.AUTH_INVALID,
        ),
        (
            403,
            "ExpiredTokenException",
            "The security token included in the request is expired",
            Outcome.AUTH_INVALID,
        ),
        (
            400,
            "ValidationException",
            "Input is too long for requested model.",
            Outcome.CONTEXT_TOO_LONG,
        ),
        (
            400,
            "ValidationException",
            "The model returned the following errors: prompt is too long: 210000 tokens > "
            "200000 maximum",
            Outcome.CONTEXT_TOO_LONG,
        ),
        (
            400,
            "ValidationException",
            "messages.0.content: A conversation must start with a user message.",
            Outcome.BAD_REQUEST,
        ),
        (
            400,
            "ValidationException",
            "The provided model identifier is invalid.",
            Outcome.MODEL_DENIED,
        ),
        (
            400,
            "ValidationException",
            "Invocation of model ID anthropic.claude-x with on-demand throughput isn’t "
            "supported. Retry your request with the ID or ARN of an inference profile that "
            "contains this model.",
            Outcome.MODEL_DENIED,
        ),
        (
            404,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
            Outcome.MODEL_DENIED,
        ),
        (
            429,
            "ModelNotReadyException",
            "Model is not ready for inference.",
            Outcome.UPSTREAM_ERROR,
        ),
        (
            408,
            "ModelTimeoutException",
            "Model has timed out in processing the request.",
            Outcome.UPSTREAM_ERROR,
        ),
        (424, "ModelErrorException", "The model failed.", Outcome.UPSTREAM_ERROR),
        (
            500,
            "InternalServerException",
            "An internal server error occurred.",
            Outcome.UPSTREAM_ERROR,
        ),
        (
            503,
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
            Outcome.UPSTREAM_ERROR,
        ),
    ],
)
def test_exception_types(status: int, kind: str, message: str, outcome: Outcome) -> None:
    failed = failure(status, kind, message)

    assert failed.outcome is outcome
    assert failed.upstream_status == status
    assert failed.upstream_error == {"message": message, "__type": kind}
    assert failed.scope is (Scope.KEY if outcome is Outcome.AUTH_INVALID else outcome.default_scope)


def test_words_the_request_held_decide_nothing() -> None:
    # A tool named to make Bedrock's refusal of its name read as a verdict on the key.
    name = "The provided model identifier is invalid"
    sent = b'{"toolConfig": {"tools": [{"toolSpec": {"name": "' + name.encode() + b'"}}]}}'
    message = f"Value '{name}' at 'toolConfig.tools.1.member.toolSpec.name' failed to satisfy"
    named = {"x-amzn-ErrorType": "ValidationException"}
    echoed = classify(400, {"message": message}, httpx.Headers(named), CLOCK, sent=sent)
    assert echoed.outcome is Outcome.BAD_REQUEST
    said = classify(400, {"message": name}, httpx.Headers(named), CLOCK, sent=b"{}")
    assert said.outcome is Outcome.MODEL_DENIED


def test_a_throttle_keeps_its_wait() -> None:
    failed = failure(429, "ThrottlingException", "slow down", **{"Retry-After": "3"})
    assert (failed.outcome, failed.retry_after_s) == (Outcome.RATE_LIMITED, 3.0)


@pytest.mark.parametrize(
    ("headers", "error", "name"),
    [
        (
            {"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/"},
            {},
            "ThrottlingException",
        ),
        (
            {},
            {"__type": "com.amazon.coral.service#UnrecognizedClientException"},
            "UnrecognizedClientException",
        ),
        ({}, {"code": "ValidationException"}, "ValidationException"),
        ({}, {"code": 429}, ""),
    ],
)
def test_where_the_exception_type_is_read(
    headers: dict[str, str], error: dict[str, Any], name: str
) -> None:
    assert error_type(httpx.Headers(headers), error) == name


def test_an_unknown_type_is_classified_by_its_status_and_words() -> None:
    assert failure(429, "SomethingNewException", "slow").outcome is Outcome.RATE_LIMITED
    wrapped = classify(200, {"code": 401, "message": "API key not valid."}, httpx.Headers(), CLOCK)
    assert wrapped.outcome is Outcome.AUTH_INVALID


# --- the adapter's stream, on a transport that answers with given bytes -------------------------


def event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":message-type": "event", ":event-type": kind, ":content-type": "application/json"}
    return encode_message(headers, orjson.dumps(payload))


def exception(kind: str, message: str) -> bytes:
    headers = {":message-type": "exception", ":exception-type": kind}
    return encode_message(headers, orjson.dumps({"message": message}))


START = event("messageStart", {"role": "assistant"})
TEXT = event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}})


@pytest.fixture
async def adapter_for() -> AsyncIterator[Callable[[bytes], BedrockAdapter]]:
    clients: list[httpx.AsyncClient] = []

    def make(stream: bytes) -> BedrockAdapter:
        def answer(request: httpx.Request) -> httpx.Response:
            assert request.headers["accept"] == "application/vnd.amazon.eventstream"
            content_type = {"content-type": "application/vnd.amazon.eventstream"}
            return httpx.Response(200, headers=content_type, content=stream)

        http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        clients.append(http)
        config = ProviderConfig.model_validate(
            {
                "kind": "bedrock",
                "base_url": "https://bedrock-runtime.us-west-2.amazonaws.com",
                "keys": ["k"],
            }
        )
        return BedrockAdapter("bedrock", config, http, CLOCK)

    yield make
    for http in clients:
        await http.aclose()


async def read_stream(
    adapter: BedrockAdapter,
) -> tuple[list[chat_pb2.ChatCompletionChunk], UpstreamFailure | None]:
    params = chat_pb2.ChatParams(model="m")
    call = ChatCall("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "api-key", params, 10.0)
    got: list[chat_pb2.ChatCompletionChunk] = []
    try:
        async with adapter.stream_chat(call) as chunks:
            async for chunk in chunks:
                got.append(chunk)
    except UpstreamFailure as failed:
        return got, failed
    return got, None


@pytest.mark.parametrize(
    ("exception_type", "outcome"),
    [
        ("throttlingException", Outcome.RATE_LIMITED),
        ("modelStreamErrorException", Outcome.UPSTREAM_ERROR),
        ("internalServerException", Outcome.UPSTREAM_ERROR),
        ("serviceUnavailableException", Outcome.UPSTREAM_ERROR),
        ("validationException", Outcome.BAD_REQUEST),
    ],
)
async def test_an_exception_mid_stream_is_classified(
    adapter_for: Callable[[bytes], BedrockAdapter], exception_type: str, outcome: Outcome
) -> None:
    chunks, failed = await read_stream(
        adapter_for(START + TEXT + exception(exception_type, "it broke"))
    )

    assert [c.choices[0].delta.text for c in chunks] == ["", "Hello"]
    assert failed is not None and failed.outcome is outcome
    assert "it broke" in str(failed)


@pytest.mark.parametrize(
    "broken",
    [
        START + TEXT[:-1] + bytes([TEXT[-1] ^ 1]),  # message CRC
        START + bytes([TEXT[0] ^ 1]) + TEXT[1:],  # prelude CRC
        START + TEXT[:20],  # cut inside a message
    ],
    ids=["bad_message_crc", "bad_prelude_crc", "cut_short"],
)
async def test_broken_frames_are_the_upstreams_failure(
    adapter_for: Callable[[bytes], BedrockAdapter], broken: bytes
) -> None:
    chunks, failed = await read_stream(adapter_for(broken))

    assert len(chunks) == 1  # what came before the broken frame
    assert failed is not None and failed.outcome is Outcome.UPSTREAM_ERROR
    assert "malformed event stream" in str(failed)


async def test_an_error_message_mid_stream(adapter_for: Callable[[bytes], BedrockAdapter]) -> None:
    error = encode_message(
        {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b""
    )
    _, failed = await read_stream(adapter_for(START + error))
    assert failed is not None and failed.outcome is Outcome.UPSTREAM_ERROR
