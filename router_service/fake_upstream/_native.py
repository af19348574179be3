"""What the native-format fakes (Gemini, Anthropic, Cohere) share: a provider-neutral view of a
chat request, and the answer the scenario makes of it (the same answer the OpenAI fake gives)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import _responses as R
from ._faults import Call


@dataclass(frozen=True)
class RequestView:
    """The parts of a chat request that decide the fake's answer, in any format."""

    last_user_text: str
    prompt_words: int
    first_tool: str | None  # name of the first tool offered
    answered_tool: bool  # the last turn carries a tool result


def chat_answer(call: Call, view: RequestView, completion_id: str) -> R.ChatAnswer:
    """Echo the last user text (or the scenario's content); call the first tool when the
    scenario asks for a tool call and the tool has not answered yet."""
    sc = call.scenario
    text = sc.content if sc.content is not None else "Echo: " + view.last_user_text
    text, pieces = R.split_pieces(text, sc.chunks)
    calls_tool = sc.tool_call and view.first_tool is not None and not view.answered_tool
    return R.ChatAnswer(
        completion_id=completion_id,
        created=int(time.time()),
        model=call.record.model,
        text=text,
        pieces=pieces,
        tool_name=(sc.tool_name or view.first_tool) if calls_tool else None,
        prompt_tokens=view.prompt_words,
        tool_arguments=R.tool_arguments(sc),
        cached_tokens=sc.cached_tokens or 0,
        cache_write_tokens=sc.cache_write_tokens or 0,
        cache_write_1h_tokens=min(sc.cache_write_1h_tokens or 0, sc.cache_write_tokens or 0),
    )


def words(*texts: str) -> int:
    return sum(R.count_words(t) for t in texts)
