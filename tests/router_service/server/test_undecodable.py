"""Bytes that are no valid request message (invalid UTF-8 in a string field, a corrupt or cut wire
format) get INVALID_ARGUMENT with google.rpc details on every method, unary, server-streaming and
bidirectional, authorized or not, the open ones too (health, reflection), and leave no traceback
in the log (grpc's own answer is UNKNOWN and an ERROR)."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import hash_key
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config

ADMIN_KEY = "sk-admin-for-undecodable-requests"
AS_ADMIN = (("authorization", f"Bearer {ADMIN_KEY}"),)
ROUTER = "/switchboard.v1.RouterService/"
ADMIN = "/switchboard.v1.AdminService/"
UNARY = [
    *(ROUTER + m for m in ("Chat", "Embed", "ListModels", "PickRoute", "ReportOutcome")),
    *(ADMIN + m for m in ("ListKeys", "SetKeyEnabled", "GetRoutingStats")),
    "/grpc.health.v1.Health/Check",
]
STREAMING = [ROUTER + "ChatStream", "/grpc.health.v1.Health/Watch"]
BIDI = [
    ROUTER + "Realtime",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
]


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (payloads under 128 bytes)."""
    return bytes([number << 3 | 2, len(payload)]) + payload


# A ChatRequest whose params.model is "small\xff\xfefast": bytes protobuf must refuse as a string.
BAD_UTF8 = field(1, field(1, b"small\xff\xfefast") + field(2, b"\x08\x03\x12\x02hi"))
GARBAGE = b"\xff\xff\xff\xff\x0f"
CUT = pb.ChatRequest(
    params=chat_pb2.ChatParams(model="m", messages=[chat_pb2.ChatMessage(text="hello")])
).SerializeToString()[:-3]


def identity(data: bytes) -> bytes:
    return data


async def call_raw(channel: grpc.aio.Channel, method: str, data: bytes, metadata: Any) -> None:
    if method in BIDI:
        bidi = channel.stream_stream(
            method, request_serializer=identity, response_deserializer=identity
        )
        async for _ in bidi(iter([data]), metadata=metadata, timeout=10):
            pass
    elif method in STREAMING:
        stream = channel.unary_stream(
            method, request_serializer=identity, response_deserializer=identity
        )
        async for _ in stream(data, metadata=metadata, timeout=10):
            pass
    else:
        unary = channel.unary_unary(
            method, request_serializer=identity, response_deserializer=identity
        )
        await unary(data, metadata=metadata, timeout=10)


@pytest.fixture
def config(fake: FakeUpstream) -> dict[str, Any]:
    clients = [
        {
            "name": "ops",
            "key_sha256": hash_key(ADMIN_KEY),
            "scopes": ["chat", "embed", "models", "route", "admin"],
        }
    ]
    return base_config(fake.base_url, auth={"clients": clients})


@pytest.mark.parametrize("authorized", [True, False], ids=["authorized", "anonymous"])
@pytest.mark.parametrize("method", UNARY + STREAMING + BIDI)
async def test_undecodable_requests_are_invalid_arguments(
    start_router: StartRouter,
    config: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    method: str,
    authorized: bool,
) -> None:
    router = await start_router(config)
    metadata = AS_ADMIN if authorized else ()
    samples = [GARBAGE, CUT, BAD_UTF8] if method.endswith("Chat") else [GARBAGE]

    for data in samples:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call_raw(router.channel, method, data, metadata)

        details = details_from_rpc_error(caught.value)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert details.reason == "INVALID_ARGUMENT"
        assert details.openai_type == "invalid_request_error"
        # protobuf's words name the type and the fault, never the bytes.
        assert details.message.startswith("The request is not a valid message: Error parsing")
        assert "small" not in details.message
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
