"""What a caller names reaches spans cut to the edge's `url.path` bound (512 bytes): the model it
asks for and its stop sequences. A span holding a caller's megabytes whole would make the export
batch it travels in too large for the collector, losing the other requests' spans with it."""

from __future__ import annotations

import grpc
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.router_service.telemetry.spans import attrs, ended

SERVER_CHAT = "switchboard.v1.RouterService/Chat"
SHOWN = 512


def params(model: str, *stops: str) -> chat_pb2.ChatParams:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hello")
    chat = chat_pb2.ChatParams(model=model, messages=[message])
    chat.stop_list.values.extend(stops)
    return chat


async def test_an_attacker_sized_model_name_is_cut_on_the_request_span(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    huge = "é" * 100_000  # two bytes a character: the cut keeps whole characters

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=params(huge)))

    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    said = attrs((await ended(captured, SERVER_CHAT)).one(SERVER_CHAT))
    assert said["gen_ai.request.model"] == "é" * (SHOWN // 2) + "…"
    assert said["error.type"] == "MODEL_NOT_FOUND"


async def test_a_configured_model_name_and_short_stops_stay_whole(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))

    await router.stub.Chat(pb.ChatRequest(params=params("chain", "END", "\n\n")))

    said = attrs((await ended(captured, SERVER_CHAT)).one(SERVER_CHAT))
    assert said["gen_ai.request.model"] == "chain"
    assert said["gen_ai.request.stop_sequences"] == ("END", "\n\n")


async def test_attacker_sized_stop_sequences_are_cut_on_the_request_span(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """Each sequence cut as a name is, and at most the first 16 of them (the span says them as
    the request began: these many are refused after)."""
    router = await start_router(base_config(fake.base_url))
    stops = ["x" * 200_000, *(f"stop {i}" for i in range(5_000))]

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=params("chain", *stops)))

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    said = attrs((await ended(captured, SERVER_CHAT)).one(SERVER_CHAT))
    shown = said["gen_ai.request.stop_sequences"]
    assert shown == ("x" * SHOWN + "…", *(f"stop {i}" for i in range(15)))
