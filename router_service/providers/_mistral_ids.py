"""Tool call ids as Mistral's models take them: exactly 9 letters and digits, an assistant's
call's `id` and a tool message's `tool_call_id` alike. Mistral's API answers any other with a
400 ("Tool call id was call_… but must be a-z, A-Z, 0-9, with a length of 9."), and so do
servers running Mistral's chat templates (vLLM…): a conversation begun on another provider
(OpenAI's `call_…`, Claude's `toolu_…`) could not go on at a Mistral model.

Known by the model's name (a deployment's `base_model`, else its `model`: an Azure
deployment's or a vLLM's served name says nothing) at any OpenAI-format server (Mistral's API,
Azure, Cloudflare's `@cf/mistral/…`, OpenRouter's `mistralai/…`, a vLLM's Hugging Face name)
and at Bedrock (`mistral.mistral-large-…`, `us.mistral.pixtral-large-…`: Converse hands the
model the ids as they come, a short one refused); an id that is 9 letters and digits already
(Mistral's own) goes as it is, another as a digest of it, so a call and its result keep one
id and two ids stay two. As `_mapping.tool_id` does for Anthropic and Bedrock. The caller's
ids are never changed: the answer's are the upstream's own."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from string import ascii_letters, digits
from typing import Any

__all__ = ["mistral_tool_id", "with_mistral_tool_ids"]

# A Mistral model's name: `mistral-small-latest`, `open-mixtral-8x22b`, `codestral-latest`,
# `ft:open-mistral-7b:…`, `mistralai/Mistral-7B-Instruct-v0.3`, `@cf/mistral/…`.
_MISTRAL_MODEL = re.compile(
    r"(?:^|[/:_.-])(?:mistral|mixtral|pixtral|codestral|devstral|magistral|ministral|voxtral)",
    re.IGNORECASE,
)
_MISTRAL_TOOL_ID = re.compile(r"[a-zA-Z0-9]{9}")
_ALPHABET = ascii_letters + digits  # 62⁹ ids: a 64-bit digest covers them


@lru_cache(maxsize=256)
def _is_mistral(model: str) -> bool:
    return _MISTRAL_MODEL.search(model) is not None


def mistral_tool_id(call_id: str) -> str:
    """`call_id` as Mistral takes it: as it is when 9 letters and digits, else a digest of it
    in those."""
    if _MISTRAL_TOOL_ID.fullmatch(call_id):
        return call_id
    number = int.from_bytes(hashlib.blake2b(call_id.encode(), digest_size=8).digest(), "big")
    letters = []
    for _ in range(9):
        number, at = divmod(number, len(_ALPHABET))
        letters.append(_ALPHABET[at])
    return "".join(letters)


def with_mistral_tool_ids(body: dict[str, Any], model: str) -> None:
    """An OpenAI-dialect chat body for `model` (the name read: a deployment's `base_model`,
    else its `model`): a Mistral model's with the tool call ids of its messages as Mistral
    takes them (`mistral_tool_id`); in place."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not _is_mistral(model):
        return
    for message in messages:
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("tool_call_id"), str):
            message["tool_call_id"] = mistral_tool_id(message["tool_call_id"])
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                call["id"] = mistral_tool_id(call["id"])
