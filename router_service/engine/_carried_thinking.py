"""Claude's signed thinking a Responses caller carried back (a reasoning item whose
``encrypted_content`` is this gateway's encoding of it: clients/codec/_responses_thinking.py).

It rides on the assistant turn it came before among that turn's reasoning items; a deployment
that takes signed thinking back (Claude's kinds: `takes_thinking_blocks`) gets it as that turn's
`thinking_blocks`, first (before any the caller gave there itself), so Claude goes on thinking
after its tool calls; every other deployment gets the turn without it (a Responses upstream
keeps its own reasoning items, which are OpenAI's).
"""

from __future__ import annotations

from typing import Any

import orjson

from clients.codec._responses_custom import REASONING_ITEMS
from clients.codec._responses_thinking import (
    THINKING_BLOCKS,
    THINKING_PREFIX,
    is_thinking,
    thinking_of,
)
from clients.switchboard.v1 import chat_pb2

__all__ = ["carries_thinking", "with_carried_thinking"]


def carries_thinking(params: chat_pb2.ChatParams) -> bool:
    """Whether a message of `params` may carry this gateway's encoding of signed thinking."""
    return any(m.extra_json and THINKING_PREFIX in m.extra_json for m in params.messages)


def with_carried_thinking(params: chat_pb2.ChatParams, claude: bool) -> chat_pb2.ChatParams:
    """`params` with the signed thinking their messages carry as those turns'
    `thinking_blocks` (`claude`: the deployment takes them) or without it; `params` itself
    when they carry none."""
    if not carries_thinking(params):
        return params
    out = chat_pb2.ChatParams()
    out.CopyFrom(params)
    for message in out.messages:
        if message.extra_json and THINKING_PREFIX in message.extra_json:
            message.extra_json = _moved(orjson.loads(message.extra_json), claude)
    return out


def _moved(extra: dict[str, Any], claude: bool) -> str:
    items = extra.get(REASONING_ITEMS)
    items = items if isinstance(items, list) else []
    ours = [i for i in items if isinstance(i, dict) and is_thinking(i.get("encrypted_content"))]
    rest = [i for i in items if not any(i is o for o in ours)]
    if rest:
        extra[REASONING_ITEMS] = rest
    else:
        extra.pop(REASONING_ITEMS, None)
    blocks = [b for i in ours for b in thinking_of(i["encrypted_content"]) or ()]
    if claude and blocks:
        given = extra.get(THINKING_BLOCKS)
        extra[THINKING_BLOCKS] = blocks + (given if isinstance(given, list) else [])
    return orjson.dumps(extra).decode() if extra else ""
