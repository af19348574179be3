"""Logprobs on the Responses API. A chat call's `logprobs: true` asks a Responses upstream with
`include: ["message.output_text.logprobs"]`, its `top_logprobs` as they are (0 to 20 there as
in chat); the `logprobs` of the answer's `output_text` parts (unary: each part's, the parts and
messages joined in order; streamed: each `response.output_text.delta`'s) are chat's
`logprobs.content` entries, in the same shape (`token`, `logprob`, `bytes`, `top_logprobs`).

OpenAI's reasoning models (every Responses-only one but computer-use) refuse them: a 400
naming `include` ("logprobs are not supported with reasoning models."), a parameter no chat
caller sent. That refusal is an UNSUPPORTED_INPUT naming `logprobs` (`logprobs_refused`), as
before it was asked: the group's next deployment may give them, and with none left the
caller's 400 names its own parameter. So is every upstream's 400 (or 422) naming the logprobs
asked of it: Gemini's ("Logprobs is not enabled for models/…"), an OpenAI-format server's on
its chat completions (OpenAI's and Azure's reasoning models: "Unsupported parameter: 'logprobs'…", a
vLLM, an Azure or other deployment whose model gives none). A 400 that mentions them but
refuses something else stays the caller's own: one naming another field (`param`), one that
only quotes the request (a validation error's `'logprobs': True` beside its `'messages'`)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from clients.codec._responses_custom import INCLUDE
from clients.codec._responses_include import LOGPROBS
from clients.switchboard.v1 import chat_pb2
from router_service.errors import UpstreamFailure
from router_service.providers._mapping import unsupported

__all__ = [
    "ask_logprobs",
    "chat_logprobs",
    "logprobs_refused",
    "part_logprobs",
]

JsonObject = dict[str, Any]

# The fields whose refusal (`param`) is one of logprobs: chat's own. The Responses API's names
# `include`, which asked for them, and says so in its message.
_NAMED = frozenset({"logprobs", "top_logprobs"})
# The statuses of a refusal: 400, or 422 from servers that answer what they cannot serve so
# (FastAPI-built ones, TGI).
_REFUSING = frozenset({400, 422})
# `param`s that name no field: a LiteLLM proxy's is the string "None".
_NO_FIELD = frozenset({"", "None", "null"})
# A logprobs field quoted as a key of the request (pydantic's `'logprobs': True`, JSON's
# `"top_logprobs": 2`), in a message that quotes the request whole (its `messages` too): a
# validation error echoing it, not a refusal of them (a LiteLLM proxy's "does not support
# parameters: {'logprobs': True}" quotes the refused parameter alone).
_QUOTED_KEY = re.compile(r"""['"]\w*logprobs['"]\s*:""", re.IGNORECASE)
_QUOTED_REQUEST = re.compile(r"""['"]messages['"]\s*:""")


def ask_logprobs(chat: Mapping[str, Any], body: JsonObject) -> None:
    """Ask `body` (a Responses body) for the logprobs the chat body `chat` asks for."""
    if isinstance(chat.get("top_logprobs"), int):  # a Responses field of the same name
        body["top_logprobs"] = chat["top_logprobs"]
    if chat.get("logprobs") is True:
        asked = body.get(INCLUDE)
        body[INCLUDE] = sorted({*(asked if isinstance(asked, list) else ()), LOGPROBS})


def part_logprobs(part: Mapping[str, Any]) -> list[Any]:
    """The logprob entries of an `output_text` part or `output_text.delta` event (none: [])."""
    entries = part.get("logprobs")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def chat_logprobs(entries: list[Any]) -> JsonObject | None:
    """A chat choice's `logprobs` of these entries; None when there are none (not asked)."""
    return {"content": entries, "refusal": None} if entries else None


def refused_logprobs(
    failure: UpstreamFailure, params: chat_pb2.ChatParams, where: str
) -> UpstreamFailure:
    """`failure`, or the UNSUPPORTED_INPUT it stands for when it is the upstream's refusal of
    the logprobs `params` ask for (a 400 or 422 that names them); `where`: the upstream, as the
    message names it (Gemini's models refuse them too: "Logprobs is not enabled for …")."""
    asked = (params.HasField("logprobs") and params.logprobs) or params.HasField("top_logprobs")
    if not asked or failure.upstream_status not in _REFUSING:
        return failure
    error = failure.upstream_error or {}
    said = str(error.get("message", ""))
    if not _names_logprobs(said, error.get("param")):
        return failure
    return unsupported(f"'logprobs': this model ({where}) gives none: {said}", "logprobs")


def _names_logprobs(said: str, param: Any) -> bool:
    """Whether an upstream's 400 (its message `said`, its `param`) refuses logprobs: its
    `param` names them, or (naming no other field) its message does, not as a key of the
    request it quotes."""
    if param in _NAMED:
        return True
    if isinstance(param, str) and param not in _NO_FIELD and param != INCLUDE:
        return False
    if _QUOTED_REQUEST.search(said):
        said = _QUOTED_KEY.sub("", said)
    return "logprob" in said.lower()


@contextmanager
def logprobs_refused(params: chat_pb2.ChatParams, where: str) -> Iterator[None]:
    """An upstream's refusal of the logprobs `params` ask for (`refused_logprobs`), raised in
    the block, as the UNSUPPORTED_INPUT it is: the group's next deployment may give them, and
    with none left the caller's 400 names `logprobs`. Every other failure as it is."""
    try:
        yield
    except UpstreamFailure as failure:
        refused = refused_logprobs(failure, params, where)
        if refused is failure:
            raise
        raise refused from failure
