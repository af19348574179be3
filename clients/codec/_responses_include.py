"""The Responses API's ``include``: which of OpenAI's optional output data a caller asks for,
on ``POST /v1/responses``, reading a response back (``GET /v1/responses/{id}``, its
``input_items``) and a conversation's items.

OpenAI defines the values (the SDK's ``ResponseIncludable``); any other is a 400 naming it, as
OpenAI's own. What each gives here: ``message.output_text.logprobs`` asks the upstream for
``logprobs`` and puts them in the ``output_text`` parts (:func:`output_logprobs`); the values of
built-in tools (``file_search_call.results``, ``web_search_call.*``,
``code_interpreter_call.outputs``, ``computer_call_output.output.image_url``) have nothing to
add, those tools being refused; ``message.input_image.image_url`` is what every listing gives
anyway (input images are kept with their URL); ``reasoning.encrypted_content`` asks a Responses
API deployment for its reasoning items' encrypted content (``_responses_custom``: no other kind
of upstream has any). Reading back answers
what was stored: ``include`` there is checked, and cannot add what the response was not made
with.
"""

from __future__ import annotations

import itertools
from typing import Any

from clients.codec._json import at_index, expect_list, invalid_value

__all__ = ["INCLUDABLE", "LOGPROBS", "include_values", "output_logprobs", "split_logprobs"]

INCLUDABLE = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
)
LOGPROBS = "message.output_text.logprobs"


def include_values(value: Any, path: str = "include") -> frozenset[str]:
    """The values of an ``include`` array (None: none), each one of OpenAI's; raises
    :class:`InvalidRequestError` naming the first that is not (``include[1]``)."""
    if value is None:
        return frozenset()
    values = expect_list(value, path)
    for index, name in enumerate(values):
        if name not in INCLUDABLE:
            invalid_value(at_index(path, index), name, INCLUDABLE)
    return frozenset(values)


def output_logprobs(choice: dict[str, Any]) -> list[dict[str, Any]]:
    """A chat choice's (or chunk choice's) ``logprobs.content`` as an ``output_text`` part's
    ``logprobs``: the same entries (``token``, ``logprob``, ``bytes``, ``top_logprobs``), with
    ``bytes`` an empty list where the upstream sent null (the Responses type has no null)."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return []
    return [_entry(entry, top=True) for entry in content if isinstance(entry, dict)]


def _entry(entry: dict[str, Any], *, top: bool) -> dict[str, Any]:
    out = {
        "token": str(entry.get("token", "")),
        "bytes": entry.get("bytes") or [],
        "logprob": entry.get("logprob", 0.0),
    }
    if top:
        alternatives = entry.get("top_logprobs") or []
        out["top_logprobs"] = [_entry(t, top=False) for t in alternatives if isinstance(t, dict)]
    return out


def split_logprobs(entries: list[dict[str, Any]], texts: list[str]) -> list[list[dict[str, Any]]]:
    """`entries` (a text's, :func:`output_logprobs`) apart for each of `texts`, the pieces that
    text was cut in (its messages around a hosted item): an entry goes with the piece its token
    begins in, by the UTF-8 bytes each token covers (its ``bytes``, else its text's)."""
    ends = list(itertools.accumulate(len(text.encode()) for text in texts))
    out: list[list[dict[str, Any]]] = [[] for _ in texts]
    at, piece = 0, 0
    for entry in entries:
        while piece < len(ends) - 1 and at >= ends[piece]:
            piece += 1
        out[piece].append(entry)
        at += len(entry["bytes"]) or len(str(entry.get("token", "")).encode())
    return out
