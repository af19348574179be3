"""Hand-made upload forms through the edge to the fake upstream (the real SDK writes neither): a
file part named nothing and typed nothing, and a text field that is not UTF-8."""

from __future__ import annotations

from typing import Any

import openai

from router_service.fake_upstream import FakeUpstream
from router_service.fake_upstream._media import PNG_1X1
from tests.e2e.test_media_sdk import router  # noqa: F401

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32)
BOUNDARY = "sb-boundary"


def form(*parts: tuple[str, bytes]) -> bytes:
    """A multipart body of (`Content-Disposition` parameters and headers, content) parts."""
    out = b""
    for head, content in parts:
        out += f"--{BOUNDARY}\r\nContent-Disposition: form-data; {head}\r\n\r\n".encode()
        out += content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def post_form(sdk: openai.AsyncOpenAI, path: str, body: bytes) -> Any:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    http = sdk._client  # the SDK's own httpx client, with its base URL and key
    answer = await http.post(
        f"{str(sdk.base_url).rstrip('/')}{path}",
        content=body,
        headers={**headers, "Authorization": f"Bearer {sdk.api_key}"},
    )
    assert answer.status_code == 200, answer.text
    return answer


async def test_a_file_without_name_or_type_is_named_by_what_it_holds(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """OpenAI tells audio formats by the file's name: one named nothing went as `file`, typed
    octet-stream, which it cannot read."""
    body = form(('name="model"', b"scribe"), ('name="file"; filename=""', WAV))
    await post_form(sdk, "/audio/transcriptions", body)
    sent = fake.state.last(path="/v1/audio/transcriptions")
    assert sent is not None
    assert sent.body["file"] == {
        "filename": "file.wav",
        "size": len(WAV),
        "content_type": "audio/wav",
    }
    body = form(
        ('name="model"', b"painter"),
        ('name="prompt"', b"a hat"),
        ('name="image"; filename=""', PNG_1X1),
    )
    await post_form(sdk, "/images/edits", body)
    sent = fake.state.last(path="/v1/images/edits")
    assert sent is not None
    size = len(PNG_1X1)
    assert sent.body["image"] == {
        "filename": "image.png",
        "size": size,
        "content_type": "image/png",
    }


async def test_a_latin_1_field_reaches_the_upstream_as_written(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    body = form(
        ('name="model"', b"scribe"),
        ('name="prompt"', "café crème".encode("latin-1")),
        ('name="file"; filename="talk.wav"', WAV),
    )
    await post_form(sdk, "/audio/transcriptions", body)
    sent = fake.state.last(path="/v1/audio/transcriptions")
    assert sent is not None and sent.body["prompt"] == "café crème"
