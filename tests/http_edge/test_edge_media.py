"""The media routes on a real uvicorn edge over the stub router: what each sends the router (the
model apart, every field as the caller wrote it; a transcription's upload as its file), what the
caller reads back (the router's bytes and content type, the route headers), and the caller's
mistakes answered by the edge itself as OpenAI error JSON, without a router call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import openai
import orjson
import pytest

from clients import ErrorDetails
from clients.switchboard.v1 import media_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as rs
from tests.http_edge.harness import EdgeFactory, StubRouter, abort_with

pytestmark = pytest.mark.timeout(30)

ROUTE = routing_pb2.RouteInfo(deployment="alpha/tts-1", attempts=[routing_pb2.Attempt()])


def answering(content_type: str, body: bytes) -> Any:
    async def on_media(request: rs.MediaRequest, context: grpc.aio.ServicerContext) -> Any:
        result = media_pb2.MediaResult(content_type=content_type, body=body)
        return rs.MediaResponse(result=result, route=ROUTE)

    return on_media


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_speech_sends_the_fields_and_returns_the_bytes(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def on_media_stream(request: Any, context: Any) -> AsyncIterator[Any]:
        yield rs.MediaStreamResponse(route=ROUTE)
        for piece in (b"ID3", b" audio"):  # relayed as they come: a MediaStream call
            chunk = media_pb2.MediaChunk(content_type="audio/mpeg", data=piece)
            yield rs.MediaStreamResponse(chunk=chunk)
        yield rs.MediaStreamResponse(summary=rs.StreamSummary(route=ROUTE))

    stub.on_media_stream = on_media_stream
    body = {"model": "voice", "input": "hi", "voice": "alloy", "speed": 1.5, "extra": {"a": 1}}
    response = await http.post("/v1/audio/speech", json=body)
    assert response.status_code == 200
    assert response.content == b"ID3 audio"
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["x-switchboard-deployment"] == "alpha/tts-1"
    (call,) = stub.calls
    params = call.request.params
    assert (params.operation, params.model) == (media_pb2.MEDIA_OPERATION_AUDIO_SPEECH, "voice")
    fields = {"input": "hi", "voice": "alloy", "speed": 1.5, "extra": {"a": 1}}
    assert orjson.loads(params.params_json) == fields
    assert not params.HasField("file")


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/v1/moderations", media_pb2.MEDIA_OPERATION_MODERATIONS),
        ("/v1/images/generations", media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS),
    ],
)
async def test_json_operations_reach_the_router_as_theirs(
    stub: StubRouter, http: httpx.AsyncClient, path: str, operation: int
) -> None:
    stub.on_media = answering("application/json", b'{"results": []}')
    response = await http.post(path, json={"model": "m", "input": "x"})
    assert response.json() == {"results": []}
    assert stub.calls[0].request.params.operation == operation


async def test_a_transcription_form_becomes_a_file_and_fields(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    stub.on_media = answering("text/plain; charset=utf-8", b"hello")
    response = await http.post(
        "/v1/audio/transcriptions",
        data={
            "model": "scribe",
            "language": "en",
            "timestamp_granularities[]": ["word", "segment"],
        },
        files={"file": ("talk.mp3", b"\x00\x01audio", "audio/mpeg")},
    )
    assert response.status_code == 200 and response.text == "hello"
    params = stub.calls[0].request.params
    assert params.model == "scribe"
    assert orjson.loads(params.params_json) == {
        "language": "en",
        "timestamp_granularities[]": ["word", "segment"],
    }
    assert params.file == media_pb2.MediaFile(
        data=b"\x00\x01audio", filename="talk.mp3", content_type="audio/mpeg"
    )


async def test_a_router_error_is_openai_error_json(
    stub: StubRouter, sdk: openai.AsyncOpenAI
) -> None:
    async def refuse(request: rs.MediaRequest, context: grpc.aio.ServicerContext) -> Any:
        details = ErrorDetails(
            code=grpc.StatusCode.INVALID_ARGUMENT,
            message="anthropic offers no /moderations API",
            reason="UNSUPPORTED_INPUT",
            openai_param="model",
        )
        await abort_with(context, details)

    stub.on_media = refuse
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.moderations.create(model="claude", input="hi")
    assert refused.value.param == "model"
    assert "no /moderations API" in refused.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [({"input": "x"}, "model"), ({"model": 7, "input": "x"}, "model"), ([1], None)],
    ids=["no model", "model not a string", "not an object"],
)
async def test_a_bad_json_body_is_refused_at_the_edge(
    stub: StubRouter, http: httpx.AsyncClient, body: Any, param: str | None
) -> None:
    response = await http.post("/v1/images/generations", json=body)
    assert response.status_code == 400
    assert error_of(response)["param"] == param
    assert error_of(response)["type"] == "invalid_request_error"
    assert stub.calls == []


async def test_an_upload_over_the_limit_is_413(stub: StubRouter, start_edge: EdgeFactory) -> None:
    edge = await start_edge(max_upload_bytes=1024)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="k", max_retries=0, timeout=10
    ) as sdk:
        with pytest.raises(openai.APIStatusError) as refused:
            await sdk.audio.transcriptions.create(model="scribe", file=("a.wav", b"x" * 2048))
    assert refused.value.status_code == 413
    assert refused.value.code == "request_too_large"
    assert stub.calls == []


async def test_fields_whose_json_is_over_the_limit_are_413(
    stub: StubRouter, start_edge: EdgeFactory
) -> None:
    """Control characters take six bytes each as JSON: the form fits, its message would not."""
    edge = await start_edge(max_upload_bytes=4096)
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        response = await http.post(
            "/v1/audio/transcriptions",
            data={"model": "scribe", "prompt": "\x01" * 3000},
            files={"file": ("a.wav", b"x")},
        )
    assert response.status_code == 413, response.text
    assert stub.calls == []


@pytest.mark.parametrize(
    ("request_kwargs", "code", "param"),
    [
        ({"json": {"model": "scribe"}}, "invalid_content_type", None),
        ({"data": {"model": "scribe"}, "files": {"other": ("a", b"x")}}, "invalid_form", "other"),
        ({"files": {"model": (None, "scribe")}}, "invalid_argument", "file"),
        ({"files": {"file": ("a.wav", b"x")}}, "invalid_argument", "model"),
        (
            {"files": [("file", ("a.wav", b"x")), ("file", ("b.wav", b"y"))]},
            "invalid_argument",
            "file",  # the second file named, not the parser's "Too many files"
        ),
    ],
    ids=["json body", "file under another name", "no file", "no model", "two files"],
)
async def test_a_bad_transcription_form_is_refused_at_the_edge(
    stub: StubRouter,
    http: httpx.AsyncClient,
    request_kwargs: dict[str, Any],
    code: str,
    param: str | None,
) -> None:
    response = await http.post("/v1/audio/transcriptions", **request_kwargs)
    assert response.status_code == 400, response.text
    assert (error_of(response)["code"], error_of(response)["param"]) == (code, param)
    assert stub.calls == []


async def test_a_form_without_a_body_boundary_is_refused(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        "/v1/audio/transcriptions",
        content=b"--nope\r\nnot a form",
        headers={"content-type": "multipart/form-data; boundary=other"},
    )
    assert response.status_code == 400
    assert error_of(response)["code"] in ("invalid_form", "invalid_argument")
    assert stub.calls == []
