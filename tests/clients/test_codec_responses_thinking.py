"""Claude's signed thinking as a reasoning item's encrypted_content (_responses_thinking): what
is read back, what is refused by its input path, and the streamed item that carries it."""

from __future__ import annotations

from typing import Any

import pytest

from clients import InvalidRequestError, chunk_from_openai
from clients.codec._responses_output import ResponseIds
from clients.codec._responses_request import responses_request_from_openai
from clients.codec._responses_stream import ResponseEventStream
from clients.codec._responses_thinking import THINKING_PREFIX, encode_thinking, thinking_of

SIGNED = {"type": "thinking", "thinking": "Hmm.", "signature": "sig"}
REDACTED = {"type": "redacted_thinking", "data": "opaque"}


def test_the_blocks_are_read_back_as_given() -> None:
    content = encode_thinking([SIGNED, REDACTED])

    assert content.startswith(THINKING_PREFIX)
    assert thinking_of(content) == [SIGNED, REDACTED]


@pytest.mark.parametrize(
    "blocks", [[], [{"type": "thinking", "thinking": "no signature"}], [{"type": "text"}], ["x"]]
)
def test_what_is_not_signed_thinking_is_not_read(blocks: list[Any]) -> None:
    assert thinking_of(encode_thinking(blocks)) is None
    assert thinking_of(THINKING_PREFIX + "%%%") is None
    assert thinking_of("sbc1." + encode_thinking([SIGNED])[5:]) is None


def test_a_garbled_item_is_refused_by_its_path() -> None:
    item = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "sbt1.e30"}
    body = {"model": "m", "input": [{"role": "user", "content": "hi"}, item]}

    with pytest.raises(InvalidRequestError) as caught:
        responses_request_from_openai(body)

    assert caught.value.param == "input[1].encrypted_content"


def test_redacted_thinking_alone_streams_as_a_reasoning_item_carrying_it() -> None:
    body = {"model": "m", "input": "hi", "stream": True, "include": ["reasoning.encrypted_content"]}
    events = ResponseEventStream(responses_request_from_openai(body), ResponseIds("resp_ab"), 1)
    chunk: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 1,
                             "model": "m", "choices": [{"index": 0, "delta": {}}]}  # fmt: skip
    chunk["choices"][0]["delta"] = {"thinking_blocks": [REDACTED]}
    opened = events.feed(chunk_from_openai(chunk))
    chunk["choices"][0]["delta"] = {"content": "Done."}
    closed = events.feed(chunk_from_openai(chunk))

    assert opened[0]["type"] == "response.output_item.added"
    done = next(e for e in closed if e["type"] == "response.output_item.done")
    assert done["item"]["type"] == "reasoning"
    assert thinking_of(done["item"]["encrypted_content"]) == [REDACTED]
