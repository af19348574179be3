"""The Ollama codec's answers: a chat completion, a stream's chunks, a load, and the models,
in Ollama's words."""

from __future__ import annotations

from typing import Any

import pytest

from clients.codec.ollama import (
    StreamLines,
    Timing,
    embeddings_to_ollama,
    load_answer,
    model_to_ollama,
    response_to_ollama,
    show_model,
)
from clients.switchboard.v1.router_service_pb2 import ModelInfo

USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
NOW = 1_700_000_000.5
ARGS = {"a": 1}


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    choice = {"index": 0, "message": message, "finish_reason": finish}
    return {"id": "x", "model": "upstream", "choices": [choice], "usage": USAGE}


def test_a_chat_answer_with_thinking_and_tool_calls() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    message = {"role": "assistant", "content": "", "reasoning_content": "hm", "tool_calls": [call]}
    answer = response_to_ollama(completion(message, "tool_calls"), "m", False, Timing(9), NOW)
    assert answer == {
        "model": "m",
        "created_at": "2023-11-14T22:13:20.500000Z",
        "message": {
            "role": "assistant",
            "content": "",
            "thinking": "hm",
            "tool_calls": [
                {"id": "c1", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}}
            ],
        },
        "done": True,
        "done_reason": "stop",
        "total_duration": 9,
        "load_duration": 0,
        "prompt_eval_count": 7,
        "prompt_eval_duration": 0,
        "eval_count": 3,
        "eval_duration": 0,
    }


@pytest.mark.parametrize(
    ("finish", "reason"), [("stop", "stop"), ("length", "length"), ("content_filter", "stop")]
)
def test_a_generate_answer_and_its_done_reason(finish: str, reason: str) -> None:
    message = {"role": "assistant", "content": "hi", "reasoning_content": "t"}
    answer = response_to_ollama(completion(message, finish), "m", True, Timing(1), NOW)
    assert (answer["response"], answer["thinking"], answer["done_reason"]) == ("hi", "t", reason)
    assert "message" not in answer and "context" not in answer


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_a_stream_sends_text_and_the_calls_whole_at_its_end() -> None:
    lines = StreamLines("m", generate=False)
    first = lines.chunk(chunk({"role": "assistant", "content": "He"}), NOW)
    assert first == [
        {
            "model": "m",
            "created_at": "2023-11-14T22:13:20.500000Z",
            "message": {"role": "assistant", "content": "He"},
            "done": False,
        }
    ]
    pieces = [
        {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}},
        {"index": 0, "function": {"arguments": ":2}"}},
    ]
    assert lines.chunk(chunk({"tool_calls": pieces[:1]}), NOW) == []
    assert lines.chunk(chunk({"tool_calls": pieces[1:]}, "tool_calls"), NOW) == []
    assert lines.chunk({"choices": [], "usage": USAGE}, NOW) == []
    last = lines.finish(None, Timing(10, 4, 6), NOW)
    assert last["message"]["tool_calls"] == [
        {"id": "c1", "function": {"index": 0, "name": "f", "arguments": {"a": 2}}}
    ]
    assert (last["done"], last["done_reason"], last["eval_count"]) == (True, "stop", 3)
    timings = (last["total_duration"], last["prompt_eval_duration"], last["eval_duration"])
    assert timings == (10, 4, 6)


def test_a_generate_stream_and_its_error() -> None:
    lines = StreamLines("m", generate=True)
    (thought,) = lines.chunk(chunk({"reasoning_content": "t"}), NOW)
    assert (thought["response"], thought["thinking"]) == ("", "t")
    assert lines.finish(USAGE, Timing(1), NOW)["prompt_eval_count"] == 7
    assert set(lines.error("gone", NOW)) == {"model", "created_at", "error"}


def test_a_load_and_an_unload() -> None:
    loaded = load_answer("m", generate=True, unload=False, now=NOW)
    assert (loaded["response"], loaded["done"], loaded["done_reason"]) == ("", True, "load")
    unloaded = load_answer("m", generate=False, unload=True, now=NOW)
    assert unloaded["message"] == {"role": "assistant", "content": ""}
    assert unloaded["done_reason"] == "unload"


def test_embeddings_in_order() -> None:
    result = {
        "data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}],
        "usage": {"prompt_tokens": 2},
    }
    answer = embeddings_to_ollama(result, "e", legacy=False, timing=Timing(5))
    assert answer["embeddings"] == [[1.0], [2.0]] and answer["prompt_eval_count"] == 2
    assert embeddings_to_ollama(result, "e", legacy=True, timing=Timing(5)) == {"embedding": [1.0]}


def test_a_model_in_the_tags_and_shown() -> None:
    model = ModelInfo(id="chain", created=0)
    tag = model_to_ollama(model)
    assert (tag["name"], tag["model"], tag["size"]) == ("chain", "chain", 0)
    assert tag["modified_at"] == "1970-01-01T00:00:00Z" and len(tag["digest"]) == 64
    shown = show_model(model)
    assert shown["capabilities"] == ["completion", "tools"]
    # Ollama's own CLI (`ollama show`) reads `model_info["general.architecture"].(string)`
    # whenever there is a model_info: without it, it panics.
    assert shown["model_info"]["general.architecture"] == ""
