"""Legacy text completions ⇄ chat (`clients.codec._completions`): what the e2e tests do not reach
(several choices in one stream, an upstream without logprobs, null options)."""

from __future__ import annotations

from typing import Any

import pytest

from clients import (
    CompletionChunks,
    InvalidRequestError,
    chat_params_to_openai,
    chunk_from_openai,
    completion_to_openai,
    completions_field,
    completions_request_from_openai,
)
from clients.codec import chat_completion_from_openai


def chat_body(body: dict[str, Any]) -> dict[str, Any]:
    return chat_params_to_openai(completions_request_from_openai(body).params)


def test_the_prompt_is_one_user_message_and_nulls_mean_not_given() -> None:
    body = {
        "model": "m",
        "prompt": "Once upon",
        "max_tokens": None,
        "suffix": None,
        "echo": None,
        "logprobs": None,
        "best_of": 1,
        "stream": None,
    }
    assert chat_body(body) == {
        "model": "m",
        "messages": [{"role": "user", "content": "Once upon"}],
        "max_tokens": 16,
    }
    assert chat_body({"model": "m", "prompt": "x", "suffix": "", "n": 3, "best_of": 3}) == {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 16,
        "n": 3,
    }


def test_a_wrong_n_is_named_before_best_of() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        completions_request_from_openai({"model": "m", "prompt": "x", "n": "2", "best_of": 2})
    assert caught.value.param == "n"


def chunk(index: int, content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {"role": "assistant", "content": ""} if content is None else {"content": content}
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up",
        "choices": [choice],
    }


def test_a_stream_echoes_the_prompt_once_per_choice() -> None:
    request = completions_request_from_openai(
        {"model": "m", "prompt": "Q: ", "echo": True, "n": 2, "stream": True}
    )
    chunks = CompletionChunks(request, "cmpl-1", 7)
    texts = []
    for raw in (
        chunk(0, None),
        chunk(1, "A"),
        chunk(0, "B"),
        chunk(1, "C"),
        chunk(0, None, "stop"),
    ):
        out = chunks.feed(chunk_from_openai(raw))
        assert out is not None
        assert (out["id"], out["created"], out["model"]) == ("cmpl-1", 7, "up")
        texts += [(c["index"], c["text"]) for c in out["choices"]]
    assert texts == [(0, "Q: "), (1, "Q: A"), (0, "B"), (1, "C"), (0, "")]


def test_logprobs_asked_of_an_upstream_that_gives_none_are_null() -> None:
    request = completions_request_from_openai({"model": "m", "prompt": "x", "logprobs": 1})
    completion = chat_completion_from_openai(
        {
            "id": "c",
            "created": 1,
            "model": "up",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "length",
                    "logprobs": None,
                }
            ],
        }
    )
    [choice] = completion_to_openai([completion], request, "cmpl-1", 1)["choices"]
    assert choice == {"text": "hi", "index": 0, "logprobs": None, "finish_reason": "length"}


def test_a_routers_refusal_names_the_field_the_caller_wrote() -> None:
    assert completions_field("messages[0].content") == "prompt"
    assert completions_field("messages") == "prompt"
    assert completions_field("top_logprobs") == "logprobs"
    assert completions_field("max_tokens") is None  # written so by the caller
    assert completions_field(None) is None
    # Of several prompts, the one its chat call was made of.
    assert completions_field("messages[0].content", prompt=2) == "prompt[2]"
    assert completions_field("top_logprobs", prompt=2) == "logprobs"


def test_chats_max_completion_tokens_is_refused_naming_it() -> None:
    # OpenAI's legacy API has no such field; passed on, it went beside `max_tokens: 16`.
    with pytest.raises(InvalidRequestError) as caught:
        completions_request_from_openai({"model": "m", "prompt": "x", "max_completion_tokens": 5})
    assert caught.value.param == "max_completion_tokens"
    assert "'max_tokens'" in str(caught.value)
    assert chat_body({"model": "m", "prompt": "x", "max_completion_tokens": None}) == {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 16,
    }
