"""OpenAI's media requests as the adapter writes them and its answers as it reads them
(`providers/_openai_media.py`): pure functions, no I/O."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import pytest
from starlette.datastructures import FormData, Headers
from starlette.formparsers import MultiPartParser

from clients.switchboard.v1 import media_pb2
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import MediaCall
from router_service.providers._openai_media import media_content, media_result

AUDIO = media_pb2.MediaFile(data=b"\x00audio", filename="a.mp3", content_type="audio/mpeg")


def call(
    operation: int,
    params_json: str,
    file: media_pb2.MediaFile | None = None,
    files: Sequence[media_pb2.MediaFile] = (),
) -> MediaCall:
    params = media_pb2.MediaParams(
        operation=operation,  # type: ignore[arg-type]
        model="group",
        params_json=params_json,
        files=files,
    )
    if file is not None:
        params.file.CopyFrom(file)
    return MediaCall("upstream-1", "sk-x", params, 10.0)


async def read_form(body: bytes, content_type: str) -> FormData:
    """The form as a server reads it (close it after)."""
    assert content_type.startswith("multipart/form-data; boundary=")

    async def chunks() -> AsyncGenerator[bytes, None]:
        yield body

    return await MultiPartParser(Headers({"content-type": content_type}), chunks()).parse()


async def uploads_of(form: FormData) -> list[tuple[str, str | None, str | None, bytes]]:
    """Each file of the form, in order: (field, filename, content type, bytes)."""
    return [
        (name, value.filename, value.content_type, await value.read())
        for name, value in form.multi_items()
        if not isinstance(value, str)
    ]


def test_a_json_operation_is_the_callers_body_with_the_upstream_model() -> None:
    body, content_type = media_content(
        call(
            media_pb2.MEDIA_OPERATION_AUDIO_SPEECH, '{"input": "hi", "model": "group", "speed": 2}'
        )
    )
    assert content_type == "application/json"
    assert body == b'{"input":"hi","model":"upstream-1","speed":2}'


async def test_a_transcription_is_a_form_with_the_file_and_each_field() -> None:
    fields = (
        '{"language": "en", "temperature": 0.5, "timestamp_granularities[]": ["word", "segment"]}'
    )
    body, content_type = media_content(
        call(media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS, fields, AUDIO)
    )
    form = await read_form(body, content_type)
    try:
        assert form.getlist("timestamp_granularities[]") == ["word", "segment"]
        assert (form["language"], form["temperature"]) == ("en", "0.5")
        assert form["model"] == "upstream-1"
        assert await uploads_of(form) == [("file", "a.mp3", "audio/mpeg", b"\x00audio")]
    finally:
        await form.close()


async def test_an_edit_is_a_form_with_each_file_under_its_field_in_order() -> None:
    files = [
        media_pb2.MediaFile(data=b"A", filename="a.png", content_type="image/png", field="image[]"),
        media_pb2.MediaFile(data=b"M", field="mask"),
        media_pb2.MediaFile(
            data=b"B", filename="b.webp", content_type="image/webp", field="image[]"
        ),
    ]
    edit = call(media_pb2.MEDIA_OPERATION_IMAGE_EDITS, '{"prompt": "a hat", "n": 2}', files=files)
    form = await read_form(*media_content(edit))
    try:
        assert (form["prompt"], form["n"], form["model"]) == ("a hat", "2", "upstream-1")
        assert await uploads_of(form) == [
            ("image[]", "a.png", "image/png", b"A"),
            ("mask", "mask", "application/octet-stream", b"M"),  # named as its field
            ("image[]", "b.webp", "image/webp", b"B"),
        ]
    finally:
        await form.close()


@pytest.mark.parametrize(
    ("operation", "field"),
    [
        (media_pb2.MEDIA_OPERATION_IMAGE_VARIATIONS, "image"),
        (media_pb2.MEDIA_OPERATION_AUDIO_TRANSLATIONS, "file"),
    ],
)
async def test_one_upload_goes_under_its_operations_field(operation: int, field: str) -> None:
    body, content_type = media_content(call(operation, '{"n": 1}', AUDIO))
    form = await read_form(body, content_type)
    try:
        assert await uploads_of(form) == [(field, "a.mp3", "audio/mpeg", b"\x00audio")]
        assert (form["n"], form["model"]) == ("1", "upstream-1")
    finally:
        await form.close()


def test_token_usage_is_read_and_a_duration_is_not() -> None:
    tokens = {"usage": {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}}
    result = media_result("application/json", b"{}", tokens)
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 5, 8)
    seconds = {"usage": {"type": "duration", "seconds": 4}}
    assert not media_result("application/json", b"{}", seconds).HasField("usage")
    assert not media_result("audio/mpeg", b"ID3", None).HasField("usage")


def test_an_answer_too_large_to_relay_is_the_callers_error() -> None:
    with pytest.raises(UpstreamFailure) as refused:
        media_result("audio/wav", b"x" * 5, None, limit=4)
    assert refused.value.outcome is Outcome.BAD_REQUEST
    assert "larger than the router relays (4 bytes)" in refused.value.message
