"""The check the attempt loop makes before leasing a key: what a native format cannot express."""

from __future__ import annotations

from typing import Any

from clients import chat_params_from_openai
from clients.switchboard.v1 import chat_pb2
from router_service.outcomes import Outcome
from router_service.providers import _anthropic_map as A
from router_service.providers import _gemini_map as G
from router_service.providers._media import unsupported_in

PDF = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}


def params(*parts: dict[str, Any], **extra: Any) -> chat_pb2.ChatParams:
    content = [{"type": "text", "text": "see"}, *parts]
    body = {"model": "m", "messages": [{"role": "user", "content": content}], **extra}
    parsed, _ = chat_params_from_openai(body)
    return parsed


def anthropic(body: dict[str, Any]) -> object:
    return A.request_body(body, "", 1, stream=False)


def test_text_and_images_are_never_mapped_for_the_check() -> None:
    mapped: list[dict[str, Any]] = []
    image = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}

    assert unsupported_in(params(image), mapped.append) is None
    assert mapped == []  # the ordinary request pays one scan of its parts, not a second mapping
    assert unsupported_in(params(PDF), mapped.append) is None
    assert len(mapped) == 1


def test_the_mapping_says_what_its_provider_cannot_express() -> None:
    assert unsupported_in(params(PDF, AUDIO), G.request_body) is None
    assert unsupported_in(params(PDF), anthropic) is None
    failure = unsupported_in(params(PDF, AUDIO), anthropic)
    assert failure is not None and failure.outcome is Outcome.UNSUPPORTED_INPUT


def test_a_malformed_request_is_left_to_the_call() -> None:
    # A file part without data is the caller's mistake whoever serves: the call raises its 400.
    empty = {"type": "file", "file": {"filename": "a.pdf"}}
    assert unsupported_in(params(empty), anthropic) is None
