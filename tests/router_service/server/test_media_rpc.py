"""RouterService.Media over real gRPC: a real router on loopback, the fake upstream. What the
router refuses before any routing (typed INVALID_ARGUMENT with the field, uploads included),
what a client key may do (the `chat` scope, rpm), what guardrails do to the texts, and what the
answer carries (the upstream's bytes and content type, usage, route)."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Iterator
from typing import Any

import grpc
import orjson
import pytest

from clients import RouterClient, SyncRouterClient, details_from_rpc_error
from clients.switchboard.v1 import media_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import bearer, client, guarded_config

pytestmark = pytest.mark.timeout(60)

MODERATIONS = media_pb2.MEDIA_OPERATION_MODERATIONS
IMAGES = media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS
TRANSCRIPTIONS = media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS
TRANSLATIONS = media_pb2.MEDIA_OPERATION_AUDIO_TRANSLATIONS
EDITS = media_pb2.MEDIA_OPERATION_IMAGE_EDITS
VARIATIONS = media_pb2.MEDIA_OPERATION_IMAGE_VARIATIONS
SPEECH = media_pb2.MEDIA_OPERATION_AUDIO_SPEECH
APP, EMBEDDER = "sk-media-app", "sk-embed-only"


def media(
    operation: int = MODERATIONS,
    model: str = "chain",
    params_json: str = '{"input": "hi"}',
    **kw: Any,
) -> pb.MediaRequest:
    params = media_pb2.MediaParams(
        operation=operation,  # type: ignore[arg-type]
        model=model,
        params_json=params_json,
        **kw,
    )
    return pb.MediaRequest(params=params)


def upload(field: str, data: bytes = b"PNG") -> media_pb2.MediaFile:
    return media_pb2.MediaFile(data=data, filename="a.png", field=field)


async def refused(router: RouterHandle, request: pb.MediaRequest, **kw: Any) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Media(request, **kw)
    return details_from_rpc_error(caught.value)


async def test_an_answer_carries_the_upstreams_body_usage_and_route(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    answer = await router.stub.Media(
        media(IMAGES, params_json='{"prompt": "a fox", "model": "ignored"}')
    )
    result = answer.result
    assert result.content_type == "application/json"
    assert len(orjson.loads(result.body)["data"]) == 1
    assert not result.HasField("usage")  # model-a is no gpt-image model: no usage reported
    assert (answer.route.deployment, answer.route.requested_model) == ("alpha/model-a", "chain")
    assert fake.state.last(path="/v1/images/generations").body["model"] == "model-a"  # type: ignore[union-attr]


async def test_token_usage_is_read_from_the_answer(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    models = {"painter": {"deployments": [{"provider": "alpha", "model": "gpt-image-1"}]}}
    router = await start_router(base_config(fake.base_url, models=models))
    answer = await router.stub.Media(media(IMAGES, "painter", '{"prompt": "one two three"}'))
    usage = answer.result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 272, 275)


async def test_speech_events_answered_whole_carry_their_usage_and_cost(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Media (not MediaStream) with `stream_format: "sse"`: the events come whole as the body,
    and the usage of `speech.audio.done` is read from them as from a JSON answer's (priced)."""
    price = {"input_per_mtok": 1_000_000, "output_per_mtok": 2_000_000}
    deployment = {"provider": "alpha", "model": "gpt-4o-mini-tts", "price": price}
    models = {"voice": {"deployments": [deployment]}}
    router = await start_router(base_config(fake.base_url, models=models))
    fields = '{"input": "hi there", "voice": "alloy", "stream_format": "sse"}'
    answer = await router.stub.Media(media(SPEECH, "voice", fields))
    assert answer.result.content_type.startswith("text/event-stream")
    assert b"speech.audio.done" in answer.result.body
    usage = answer.result.usage
    assert (usage.prompt_tokens, usage.total_tokens) == (2, 2 + usage.completion_tokens)
    assert usage.completion_tokens > 0
    assert answer.route.cost_usd == pytest.approx(2 + 2 * usage.completion_tokens)


async def test_an_error_event_in_speech_events_answered_whole_fails_over(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """An event stream answered whole that says an error (a root-level `error` event) is the
    upstream's failure, as a JSON answer's wrapped error is: the next deployment answers."""
    deployments = [
        {"provider": "alpha", "model": "tts-a"},
        {"provider": "beta", "model": "tts-b"},
    ]
    models = {"voice": {"deployments": deployments}}
    router = await start_router(base_config(fake.base_url, models=models))
    fake.state.set_scenario(Scenario(wrapped_error_at_chunk=2), model="tts-a")  # in its events
    fields = '{"input": "hi there", "voice": "alloy", "stream_format": "sse"}'
    answer = await router.stub.Media(media(SPEECH, "voice", fields))
    assert answer.route.deployment == "beta/tts-b"
    assert b'"error"' not in answer.result.body
    assert [call.model for call in fake.state.calls()] == ["tts-a", "tts-b"]
    assert b"speech.audio.done" in answer.result.body


async def test_speech_events_answered_whole_are_bounded_by_the_configured_event_size(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Each event of speech's events answered whole is held to `http.max_event_bytes`, as a
    streamed event is: one past it (here a 4 KiB `speech.audio.delta`) is the upstream's
    failure, said with the configured bound."""
    models = {"voice": {"deployments": [{"provider": "alpha", "model": "gpt-4o-mini-tts"}]}}
    config = base_config(fake.base_url, models=models)
    config["http"] = {"max_event_bytes": 2048}
    router = await start_router(config)
    fields = orjson.dumps({"input": "word " * 2000, "voice": "alloy", "stream_format": "sse"})
    details = await refused(router, media(SPEECH, "voice", fields.decode()))
    assert details.reason == "UPSTREAM_ERROR"
    assert "larger than the limit of 2048 bytes" in details.message


async def test_the_python_clients_call_it(router: RouterHandle) -> None:
    request = media(
        media_pb2.MEDIA_OPERATION_AUDIO_SPEECH, params_json='{"input": "hi", "voice": "a"}'
    )
    async with RouterClient(router.server.address) as client:
        answer = await client.media(request, timeout=10)
    assert answer.result.content_type == "audio/mpeg"
    with SyncRouterClient(router.server.address) as sync:
        again = await asyncio.to_thread(sync.media, request, timeout=10)
    assert again.result.body == answer.result.body


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (media(operation=0), "operation"),
        (media(model=""), "model"),
        (media(params_json="{"), "params_json"),
        (media(params_json="[1]"), "params_json"),
        (media(params_json='{"input": "x", "stream": true}'), "stream"),
        (media(TRANSCRIPTIONS, params_json="{}"), "file"),
        (media(file=media_pb2.MediaFile(data=b"x")), "file"),
        (media(IMAGES, params_json='{"prompt": "x"}', files=[upload("image")]), "files"),
        (media(TRANSLATIONS, params_json="{}"), "file"),
        (media(TRANSLATIONS, params_json="{}", file=upload("file", b"")), "file"),
        (media(VARIATIONS, params_json="{}", files=[upload("image")]), "files"),
        (media(VARIATIONS, params_json="{}", file=upload("mask")), "file.field"),
        (media(EDITS, params_json='{"prompt": "x"}'), "files"),
        (media(EDITS, files=[upload("mask")]), "files"),
        (media(EDITS, files=[upload("image"), upload("mask"), upload("mask")]), "files[2].field"),
        (media(EDITS, files=[upload("image"), upload("file")]), "files[1].field"),
        (media(EDITS, files=[upload("image[]")] * 17), "files[16].field"),
        (media(EDITS, files=[upload("image[]"), upload("image[]", b"")]), "files[1].data"),
        (media(EDITS, file=upload("image")), "file"),
        (media(EDITS, params_json='{"mask": "m"}', files=[upload("image")]), "params_json"),
    ],
    ids=[
        "no operation",
        "no model",
        "not json",
        "not an object",
        "stream",
        "no file",
        "a file",
        "files for a json operation",
        "translation without a file",
        "translation of an empty file",
        "variation in files",
        "variation under another field",
        "edit without files",
        "edit without an image",
        "two masks",
        "a field an edit does not take",
        "seventeen images",
        "an empty image",
        "edit in file",
        "an upload in params_json",
    ],
)
async def test_what_no_upstream_request_can_be_made_of_is_refused(
    router: RouterHandle, fake: FakeUpstream, request_: pb.MediaRequest, param: str
) -> None:
    details = await refused(router, request_)
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.openai_param == param
    assert fake.state.calls() == []


async def test_a_kind_without_the_endpoint_is_unsupported_input(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    providers = {
        "cf": {"kind": "cloudflare", "base_url": fake.url, "keys": ["k"], "account_id": "a"}
    }
    models = {"workers": {"deployments": [{"provider": "cf", "model": "@cf/x"}]}}
    router = await start_router(base_config(fake.base_url, providers=providers, models=models))
    details = await refused(router, media(model="workers"))
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "UNSUPPORTED_INPUT"
    assert details.message == "cloudflare offers no /moderations API"
    assert fake.state.calls() == []


@pytest.fixture
async def guarded(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    rules = [{"name": "pii", "detect": ["email"], "action": "redact"}]
    config = guarded_config(
        fake.base_url,
        client("app", APP, rpm=2),
        client("embedder", EMBEDDER, scopes=["embed"]),
        guardrails=rules,
    )
    return await start_router(config)


async def test_media_needs_the_chat_scope(guarded: RouterHandle, fake: FakeUpstream) -> None:
    details = await refused(guarded, media(), metadata=bearer(EMBEDDER))
    assert details.code is grpc.StatusCode.PERMISSION_DENIED
    assert fake.state.calls() == []


async def test_media_calls_count_in_rpm(guarded: RouterHandle) -> None:
    for _ in range(2):
        await guarded.stub.Media(media(), metadata=bearer(APP))
    details = await refused(guarded, media(), metadata=bearer(APP))
    assert details.code is grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_texts_are_redacted_before_they_leave(
    guarded: RouterHandle, fake: FakeUpstream
) -> None:
    body = {"input": ["mail jane@example.com", {"type": "text", "text": "or bob@example.org"}]}
    answer = await guarded.stub.Media(
        media(params_json=orjson.dumps(body).decode()), metadata=bearer(APP)
    )
    assert list(answer.route.guardrails) == ["pii"]
    sent = fake.state.last(path="/v1/moderations").body["input"]  # type: ignore[union-attr]
    assert sent == ["mail [REDACTED:email]", {"type": "text", "text": "or [REDACTED:email]"}]


async def test_an_edits_prompt_is_redacted_and_its_images_sent(
    guarded: RouterHandle, fake: FakeUpstream
) -> None:
    files = [upload("image[]"), upload("image[]", b"PNG2"), upload("mask")]
    request = media(EDITS, params_json='{"prompt": "sign it jane@example.com"}', files=files)
    answer = await guarded.stub.Media(request, metadata=bearer(APP))
    assert list(answer.route.guardrails) == ["pii"]
    sent = fake.state.last(path="/v1/images/edits").body  # type: ignore[union-attr]
    assert sent["prompt"] == "sign it [REDACTED:email]"
    assert [image["size"] for image in sent["image[]"]] == [3, 4]
    assert sent["mask"]["filename"] == "a.png"


async def test_an_upload_without_a_content_type_is_sent_as_its_names(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    """A `MediaFile` with a `filename` and no `content_type` goes up as its name's media type, as
    the OpenAI SDK sends it (OpenAI refuses an image to edit sent as application/octet-stream);
    one with neither is named as its field and sent as application/octet-stream."""
    files = [upload("image[]"), media_pb2.MediaFile(data=b"JPG", filename="b.jpg", field="image[]")]
    files.append(media_pb2.MediaFile(data=b"M", field="mask"))
    await router.stub.Media(media(EDITS, params_json='{"prompt": "a hat"}', files=files))
    sent = fake.state.last(path="/v1/images/edits").body  # type: ignore[union-attr]
    assert [(f["filename"], f["content_type"]) for f in sent["image[]"]] == [
        ("a.png", "image/png"),
        ("b.jpg", "image/jpeg"),
    ]
    assert (sent["mask"]["filename"], sent["mask"]["content_type"]) == (
        "mask",
        "application/octet-stream",
    )
    audio = media_pb2.MediaFile(data=b"ID3", filename="speech.mp3")
    await router.stub.Media(media(TRANSCRIPTIONS, params_json="{}", file=audio))
    sent = fake.state.last(path="/v1/audio/transcriptions").body  # type: ignore[union-attr]
    assert (sent["file"]["filename"], sent["file"]["content_type"]) == ("speech.mp3", "audio/mpeg")


@pytest.fixture
def bare_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A host without a media types database (/etc/mime.types: a slim container image has
    none): Python's guesses are its own built-in few (no .webp, .m4a, .flac)."""
    monkeypatch.setattr(mimetypes, "knownfiles", [])
    mimetypes.init()
    yield
    monkeypatch.undo()
    mimetypes.init()


@pytest.mark.usefixtures("bare_host")
async def test_an_upload_is_sent_as_its_names_type_on_a_host_without_mime_types(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    """What an upload without a content_type goes up as does not hang on the host's database: a
    WebP image to edit (which OpenAI takes, and refuses as octet-stream), an M4A or FLAC to
    transcribe, on a slim image as on any."""
    files = [media_pb2.MediaFile(data=b"WEBP", filename="a.webp", field="image")]
    await router.stub.Media(media(EDITS, params_json='{"prompt": "a hat"}', files=files))
    sent = fake.state.last(path="/v1/images/edits").body  # type: ignore[union-attr]
    assert sent["image"]["content_type"] == "image/webp"
    for name, kind in [("talk.m4a", "audio/mp4"), ("talk.flac", "audio/flac")]:
        audio = media_pb2.MediaFile(data=b"AUDIO", filename=name)
        await router.stub.Media(media(TRANSCRIPTIONS, params_json="{}", file=audio))
        sent = fake.state.last(path="/v1/audio/transcriptions").body  # type: ignore[union-attr]
        assert sent["file"]["content_type"] == kind
