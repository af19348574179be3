"""RouterService.MediaStream over real gRPC with the Python clients (async and sync): a real
router on loopback, the fake upstream. A rate-limited key is rotated before the first byte, the
stream's messages (route, chunks, summary with the upstream's usage), what does not stream is
refused before any routing, and leaving the stream closes the upstream call."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from clients import RouterClient, RouterError, SyncRouterClient
from clients.switchboard.v1 import media_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config

pytestmark = pytest.mark.timeout(60)

SPEECH = media_pb2.MEDIA_OPERATION_AUDIO_SPEECH


def streamed(operation: int, fields: dict[str, object]) -> pb.MediaStreamRequest:
    params = media_pb2.MediaParams(
        operation=operation,  # type: ignore[arg-type]
        model="chain",
        params_json=orjson.dumps(fields).decode(),
    )
    return pb.MediaStreamRequest(params=params)


async def test_a_rate_limited_key_is_rotated_before_the_first_byte(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="30"), key="sk-alpha-1")
    request = streamed(SPEECH, {"input": "hi there", "voice": "a", "stream_format": "sse"})
    async with RouterClient(router.server.address) as client:
        async with client.media_stream(request, timeout=10) as stream:
            messages = [message async for message in stream]
    kinds = [m.WhichOneof("event") for m in messages]
    assert kinds == ["route", "chunk", "chunk", "chunk", "chunk", "summary"]
    route = messages[0].route
    assert route.deployment == "alpha/model-a"
    assert [a.key_fingerprint != "" for a in route.attempts] == [True, True]
    assert route.attempts[0].key_fingerprint != route.attempts[1].key_fingerprint
    first = messages[1].chunk
    assert first.content_type == "text/event-stream" and not first.event
    assert orjson.loads(first.event_json)["type"] == "speech.audio.delta"
    usage = messages[-1].summary.usage
    assert (usage.prompt_tokens, usage.total_tokens) == (2, 2 + usage.completion_tokens)
    assert [r.key for r in fake.state.calls()] == ["sk-alpha-1", "sk-alpha-2"]

    def sync_kinds() -> list[str | None]:
        with SyncRouterClient(router.server.address) as sync:
            with sync.media_stream(request, timeout=10) as stream:
                return [message.WhichOneof("event") for message in stream]

    assert await asyncio.to_thread(sync_kinds) == kinds


@pytest.mark.parametrize(
    ("operation", "fields", "param"),
    [
        (media_pb2.MEDIA_OPERATION_AUDIO_TRANSLATIONS, {}, "operation"),
        (media_pb2.MEDIA_OPERATION_MODERATIONS, {"input": "x"}, "operation"),
        (SPEECH, {"input": "x", "voice": "a", "stream": True}, "stream"),
    ],
)
async def test_what_does_not_stream_is_refused(
    router: RouterHandle, fake: FakeUpstream, operation: int, fields: dict[str, object], param: str
) -> None:
    async with RouterClient(router.server.address) as client:
        with pytest.raises(RouterError) as caught:
            async with client.media_stream(streamed(operation, fields), timeout=10) as stream:
                [message async for message in stream]
    assert caught.value.details.openai_param == param
    assert fake.state.calls() == []


async def test_leaving_the_stream_closes_the_upstream_call(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(stall_after_chunks=1))
    request = streamed(SPEECH, {"input": "hi there", "voice": "a"})
    async with RouterClient(router.server.address) as client:
        async with client.media_stream(request, timeout=10) as stream:
            kinds = [(await anext(stream)).WhichOneof("event") for _ in range(2)]
            assert kinds == ["route", "chunk"]
            record = fake.state.last(path="/v1/audio/speech")
            assert record is not None and not record.client_disconnected
    await fake.state.wait_for(lambda: record.client_disconnected)
    assert record.chunks_sent == 1


@pytest.mark.parametrize(
    ("operation", "fields"),
    [
        # `n: 2` images: the first image's `completed` event is not the stream's end.
        (media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS, {"prompt": "a fox", "n": 2, "stream": True}),
        # Speech's audio bytes have no finish event at all.
        (SPEECH, {"input": "hi there", "voice": "a"}),
    ],
)
async def test_heartbeats_go_on_until_the_last_part_was_made(
    fake: FakeUpstream, start_router: StartRouter, operation: int, fields: dict[str, object]
) -> None:
    """While the upstream is quiet mid-stream (the second image being made, tens of seconds
    upstream; audio not yet there) the caller still hears heartbeats, which the edge writes as
    keepalives for idle-timing proxies, not silence until the stall window."""
    router = await start_router(base_config(fake.base_url, streams={"heartbeat_s": 0.02}))
    fake.state.set_scenario(Scenario(held_after_chunks=1))  # between the two images
    async with RouterClient(router.server.address) as client:
        async with client.media_stream(streamed(operation, fields), timeout=10) as stream:
            kinds = [(await anext(stream)).WhichOneof("event") for _ in range(3)]
            fake.state.release()
            kinds += [message.WhichOneof("event") async for message in stream]
    assert kinds[:3] == ["route", "chunk", "heartbeat"]
    assert kinds[-2:] == ["chunk", "summary"]


async def test_an_image_stream_cut_before_its_last_image_is_truncated(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """`n: 2` images and the upstream ends after the first's `completed` event: the caller is
    told the stream was cut (an error event), not handed one image as the whole answer."""
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario(truncate_after_chunks=1))
    fields = {"prompt": "a fox", "n": 2, "stream": True}
    request = streamed(media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS, fields)
    async with RouterClient(router.server.address) as client:
        async with client.media_stream(request, timeout=10) as stream:
            messages = [message async for message in stream]
    kinds = [message.WhichOneof("event") for message in messages]
    assert kinds == ["route", "chunk", "error"]
    assert messages[-1].error.code == "truncated"


@pytest.mark.parametrize(
    ("operation", "stream", "sent"),
    [
        # A form's `stream` as a caller may write it: read as true, sent as the form's "true".
        (media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS, " True ", "true"),
        # A JSON body's, from a gRPC caller that wrote the text: sent as the JSON boolean.
        (media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS, "TRUE", True),
    ],
)
async def test_the_upstream_gets_stream_as_the_boolean_the_router_read(
    router: RouterHandle, fake: FakeUpstream, operation: int, stream: str, sent: object
) -> None:
    request = streamed(operation, {"prompt": "a fox", "stream": stream})
    if operation == media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS:
        request.params.file.CopyFrom(media_pb2.MediaFile(data=b"RIFF", filename="a.wav"))
    async with RouterClient(router.server.address) as client:
        async with client.media_stream(request, timeout=10) as stream_:
            kinds = [message.WhichOneof("event") async for message in stream_]
    assert kinds[0] == "route" and kinds[-1] == "summary"
    (record,) = fake.state.calls()
    assert record.body["stream"] == sent  # not the caller's text: a strict upstream takes it
