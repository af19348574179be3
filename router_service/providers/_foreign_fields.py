"""The fields of other servers' that a caller's messages carry, taken out of an OpenAI-format body
where the server does not take them.

A caller hands back the reasoning an answer came with where the answering kind takes it: Claude's
signed thinking as an assistant message's `thinking_blocks` (LiteLLM's field; the Anthropic
Messages entrance writes it too), Gemini's thought signature as a tool call's
`extra_content.google.thought_signature` (where Google's OpenAI-compatible endpoint takes it),
an OpenAI-compatible server's own reasoning as `reasoning_content` (DeepSeek, vLLM, xAI),
`reasoning` or `reasoning_details` (OpenRouter); and LiteLLM's and OpenRouter's callers mark
Anthropic prompt caching with `cache_control` on content parts (and messages, tools, tool calls);
the Messages API entrance puts a document's `citations` and `context` on its file part, which go
where `cache_control` goes (Anthropic's block fields: taken by the servers that take it).
A group may fail over to another kind, and OpenAI-compatible servers with a strict schema refuse
a property they do not know with a 400: OpenAI's (and Azure's) "Additional properties are not
allowed ('thinking_blocks' was unexpected)", Groq's and Cerebras' "property 'reasoning_content'
is unsupported" (Groq also "property 'reasoning' is unsupported"), pydantic-based servers'
"Extra inputs are not permitted". Claude's kinds (Anthropic, Bedrock, Vertex) and Gemini's build
their own bodies and read these fields there.

So an OpenAI-format deployment never gets `thinking_blocks`, nor a call's `extra_content` but at
Google's endpoint, and gets the rest only where its server takes them (`taken_fields`): a
provider's `message_fields` when set; else by kind and host: none at Azure, api.openai.com (and its
data residency hosts, eu.api.openai.com…), api.groq.com, api.cerebras.ai, api.mistral.ai (a 422
"Extra inputs are not permitted") and Google's endpoint; `reasoning_content` at DeepSeek, whose
thinking mode 400s a tool-calling turn handed back without it ("The reasoning_content in the
thinking mode must be passed back to the API":
api-docs.deepseek.com/guides/thinking_mode#tool-calls; the first deepseek-reasoner's guide said the
opposite, a 400 for it in the input, which the thinking mode replaced), and at xAI (its encrypted
reasoning, docs.x.ai); all of them elsewhere (OpenRouter takes its `reasoning_details` back and
`cache_control` on parts; vLLM, LiteLLM and local servers take or ignore them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, get_args
from urllib.parse import urlsplit

from clients.codec.anthropic import BLOCK_KEY, TOOL_ERROR_KEY
from clients.codec.gemini import GEMINI_ONLY
from router_service.config._providers import ForeignField
from router_service.providers._anthropic_blocks import DOCUMENT_FIELDS
from router_service.providers._mapping import said_failed
from router_service.providers._mistral_ids import with_mistral_tool_ids
from router_service.providers._reasoning_object import is_google_openai, is_openai_api

__all__ = ["ALL_FIELDS", "taken_fields", "without_foreign_fields"]

THINKING_BLOCKS = "thinking_blocks"
EXTRA_CONTENT = "extra_content"
CACHE_CONTROL = "cache_control"
ALL_FIELDS = frozenset(get_args(ForeignField))  # the config's `message_fields` values
REASONING_FIELDS = tuple(field for field in get_args(ForeignField) if field != CACHE_CONTROL)

_NONE: frozenset[str] = frozenset()
_BY_HOST = {
    "api.groq.com": _NONE,
    "api.cerebras.ai": _NONE,
    "api.mistral.ai": _NONE,  # a 422 "Extra inputs are not permitted" (extra_forbidden)
    "api.deepseek.com": frozenset({"reasoning_content"}),
    "api.x.ai": frozenset({"reasoning_content"}),
}


def taken_fields(kind: str, base_url: str, configured: Iterable[str] | None) -> frozenset[str]:
    """Which of `ALL_FIELDS` an OpenAI-format deployment's server takes: `configured` (the
    provider's `message_fields`) when set, else by kind and base URL host."""
    if configured is not None:
        return frozenset(configured)
    if kind == "azure" or is_google_openai(base_url):
        return _NONE
    if is_openai_api(base_url):  # its data residency hosts too: eu.api.openai.com
        return _NONE
    return _BY_HOST.get((urlsplit(base_url).hostname or "").lower(), ALL_FIELDS)


def without_foreign_fields(
    body: dict[str, Any], taken: frozenset[str], *, google: bool = False, model: str = ""
) -> None:
    """`body` without `thinking_blocks`, the fields of `ALL_FIELDS` not `taken`, the Gemini
    entrance's `GEMINI_ONLY` fields (a Gemini deployment's: no OpenAI-format server, Google's
    endpoint included, has them), and, unless `google` (Google's endpoint), its tool calls'
    `extra_content`; a failed tool result's flag (`TOOL_ERROR_KEY`: said in its text instead);
    at a Mistral model (`model`, the name read: a deployment's `base_model`, else its `model`;
    "": the body's), its tool call ids as Mistral takes them (`with_mistral_tool_ids`); in
    place."""
    body.pop(GEMINI_ONLY, None)
    # Another provider's tool call ids, at a Mistral model.
    with_mistral_tool_ids(body, model or str(body.get("model") or ""))
    cached = CACHE_CONTROL in taken
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        if not cached:
            _uncached(message)
        if message.pop(TOOL_ERROR_KEY, None) is True:  # no OpenAI word: its text says it
            message["content"] = said_failed(message.get("content"))
        content = message.get("content")
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict):
                # A block only Claude reads, on the text part that stands for it: no OpenAI-format
                # server reads it (its text is the part's own).
                part.pop(BLOCK_KEY, None)
        if message.get("role") != "assistant":
            continue
        message.pop(THINKING_BLOCKS, None)
        for field in REASONING_FIELDS:
            if field not in taken:
                message.pop(field, None)
        calls = message.get("tool_calls")
        if google or not isinstance(calls, list):
            continue
        for call in calls:
            if isinstance(call, dict):
                call.pop(EXTRA_CONTENT, None)
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) and not cached else ():
        if isinstance(tool, dict):
            tool.pop(CACHE_CONTROL, None)


def _uncached(message: dict[str, Any]) -> None:
    """`message`, its content parts and its tool calls without `cache_control`, and its file
    parts without the document fields that go with it (Anthropic's words, from the Messages
    API entrance: a document's `citations` config and `context`)."""
    message.pop(CACHE_CONTROL, None)
    content = message.get("content")
    for part in content if isinstance(content, list) else ():
        if isinstance(part, dict):
            part.pop(CACHE_CONTROL, None)
            for field in DOCUMENT_FIELDS:
                part.pop(field, None)
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        if isinstance(call, dict):
            call.pop(CACHE_CONTROL, None)
