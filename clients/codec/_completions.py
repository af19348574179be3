"""OpenAI's legacy text completions (``POST /v1/completions``) over the router's chat calls.

A request becomes the chat-completions body it means — its ``prompt`` one user message — and is
then parsed by :func:`chat_params_from_openai`, as the Responses API's are: one validation and one
way to the router for every API. The answers are read in their chat JSON form
(:func:`chat_completion_to_openai`, :func:`chunk_to_openai`) and reshaped into ``text_completion``
objects: a choice's ``text`` is its message's content (after the prompt with ``echo``), and chat
logprobs become the legacy ``tokens`` / ``token_logprobs`` / ``top_logprobs`` / ``text_offset``.

Several prompts (up to ``MAX_PROMPTS``: LangChain's ``OpenAI`` batches 20) are one chat call each,
their choices put together as OpenAI orders them (prompt by prompt, ``n`` each) and their usage
added up; a stream takes one prompt. What a chat model cannot do is refused with
:class:`InvalidRequestError` naming the field: token arrays (chat models take text), ``suffix``
(chat models have no insertion mode), ``best_of`` other than ``n`` (no chat API ranks candidates
server-side), ``echo`` with ``logprobs`` (chat answers carry no logprobs of the prompt;
OpenAI's own instruct model refuses the pair too), chat's ``messages``, tools and audio output
(``modalities``, ``audio``: a tool call or audio would have nowhere to go in a
``text_completion``), and chat's ``max_completion_tokens`` (this
API's bound is ``max_tokens``, 16 when absent: the upstream would have been sent both).
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clients.codec._json import expect_bool, expect_int, expect_str, fail_type, missing
from clients.codec._request import MOST_TOP_LOGPROBS, chat_params_from_openai
from clients.codec._response import chat_completion_to_openai, chunk_to_openai
from clients.codec._said import said
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2

# OpenAI's default when `max_tokens` is absent (or null) on this API, unlike chat's "no limit".
DEFAULT_MAX_TOKENS = 16
# Prompts one request may hold, each a chat call of its own: LangChain's `OpenAI` batches 20.
MAX_PROMPTS = 20
# Keys read here; every other key rides on to the chat body as the chat route's unknowns do
# (`top_k`, `repetition_penalty`… of OpenAI-compatible servers that text-completion UIs send).
_TRANSLATED = frozenset({"prompt", "echo", "logprobs", "suffix", "best_of", "max_tokens"})
# Chat's keys a text completion has no place for, refused when set (OpenAI's legacy API refuses
# them as unknown): a tool call would be dropped (the choice's text empty), and so would audio
# (`modalities`, `audio`: the upstream billed for it); `messages` is what `prompt` is made into.
_CHAT_ONLY = (
    "messages",
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "modalities",
    "audio",
)
# Chat's key → the field of this API that set it, for a refusal of the router's shared chat
# checks (`completions_field`: a guardrail's block of the prompt…). The prompt is each chat
# call's one message: `prompt`, or of several `prompt[i]`, the one the failed call was made of.
_CALLERS_FIELDS = {"messages": "prompt", "top_logprobs": "logprobs"}


@dataclass(frozen=True)
class CompletionsRequest:
    """A parsed ``POST /v1/completions`` body."""

    params: chat_pb2.ChatParams  # the first prompt's chat call (`each_prompt`: all of them)
    stream: bool
    prompt: str  # the first prompt
    echo: bool = False
    logprobs: int | None = None  # the caller's `logprobs`: top tokens per position
    more_prompts: tuple[str, ...] = ()  # after the first, each one more chat call

    @property
    def prompts(self) -> tuple[str, ...]:
        return (self.prompt, *self.more_prompts)

    def each_prompt(self) -> list[chat_pb2.ChatParams]:
        """One chat call's params per prompt, in order."""
        calls = [self.params]
        for prompt in self.more_prompts:
            params = chat_pb2.ChatParams()
            params.CopyFrom(self.params)
            params.messages[0].text = prompt
            calls.append(params)
        return calls


def completions_request_from_openai(body: dict[str, Any]) -> CompletionsRequest:
    """Parse a text completions request; raises :class:`InvalidRequestError` naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    prompt, *more = _prompts(body.get("prompt"))
    chat: dict[str, Any] = {k: v for k, v in body.items() if k not in _TRANSLATED}
    chat["messages"] = [{"role": "user", "content": prompt}]
    max_tokens = body.get("max_tokens")
    chat["max_tokens"] = (
        DEFAULT_MAX_TOKENS if max_tokens is None else expect_int(max_tokens, "max_tokens")
    )
    echo = body.get("echo") is not None and expect_bool(body["echo"], "echo")
    logprobs = _logprobs(body.get("logprobs"), echo)
    if logprobs is not None:
        chat["logprobs"], chat["top_logprobs"] = True, logprobs
    params, stream = chat_params_from_openai(chat)
    _refuse_unsupported(body, params.n if params.HasField("n") else 1)
    if more and stream:
        raise InvalidRequestError(
            f"'prompt' holds {len(more) + 1} prompts: a stream answers one prompt. Stream one "
            "request per prompt, or leave 'stream' out to have them answered together.",
            param="prompt",
        )
    return CompletionsRequest(params, stream, prompt, echo, logprobs, tuple(more))


def completions_field(param: str | None, prompt: int | None = None) -> str | None:
    """The field of this API that chat's `param` (in a router's refusal) stands for; None when
    the caller wrote it so (`temperature`, `max_tokens`) or it names no field. `prompt`: of
    several prompts, the index of the one the refused chat call was made of."""
    key = (param or "").partition("[")[0].partition(".")[0]
    field = _CALLERS_FIELDS.get(key)
    return f"{field}[{prompt}]" if field == "prompt" and prompt is not None else field


def _prompts(value: Any) -> list[str]:
    """The prompts: a string, or an array of 1 to MAX_PROMPTS strings."""
    if value is None:
        missing("prompt")
    if isinstance(value, list) and value and all(isinstance(p, str) for p in value):
        if len(value) > MAX_PROMPTS:
            raise InvalidRequestError(
                f"'prompt' holds {len(value)} prompts, more than {MAX_PROMPTS} (each is a chat "
                "call of its own): send them in several requests (LangChain's OpenAI LLM: "
                f"batch_size={MAX_PROMPTS} or less).",
                param="prompt",
            )
        return list(value)
    if isinstance(value, list) and value:
        raise InvalidRequestError(
            "'prompt' as token ids is not supported: the request is answered by a chat model, "
            "which takes text. Send the prompt as a string.",
            param="prompt",
        )
    if not isinstance(value, str):
        fail_type("prompt", f"a string or an array of 1 to {MAX_PROMPTS} strings", value)
    return [value]


def _logprobs(value: Any, echo: bool) -> int | None:
    if value is None:
        return None
    logprobs = expect_int(value, "logprobs")
    # Chat's bound: what is asked of the upstream (OpenAI's own legacy API stops at 5;
    # text-completion UIs such as SillyTavern ask for 10).
    if not 0 <= logprobs <= MOST_TOP_LOGPROBS:
        raise InvalidRequestError(
            f"'logprobs' must be between 0 and {MOST_TOP_LOGPROBS}, got {logprobs}.",
            param="logprobs",
        )
    if echo:
        raise InvalidRequestError(
            "'echo' cannot be used with 'logprobs': the chat model that answers gives no "
            "logprobs of the prompt. Send the prompt without 'echo' (prepend it yourself).",
            param="echo",
        )
    return logprobs


def _refuse_unsupported(body: dict[str, Any], n: int) -> None:
    for key in _CHAT_ONLY:
        if body.get(key) is not None:
            raise InvalidRequestError(
                f"'{key}' is not supported by text completions, which answer text from "
                "'prompt': use /v1/chat/completions for messages, tools and audio.",
                param=key,
            )
    if body.get("max_completion_tokens") is not None:
        raise InvalidRequestError(
            "'max_completion_tokens' is not supported by text completions (it is chat's name "
            "for the bound): send 'max_tokens', which is 16 when absent.",
            param="max_completion_tokens",
        )
    suffix = body.get("suffix")
    if suffix is not None and expect_str(suffix, "suffix"):
        raise InvalidRequestError(
            "'suffix' is not supported: the request is answered by a chat model, which has no "
            "insertion mode. Put the text to continue in 'prompt'.",
            param="suffix",
        )
    best_of = body.get("best_of")
    if best_of is not None and expect_int(best_of, "best_of") != n:
        raise InvalidRequestError(
            "'best_of' is not supported (other than equal to 'n'): no chat API ranks candidates "
            "server-side. Ask for 'n' completions with 'logprobs' and pick among them yourself.",
            param="best_of",
        )


# --- answers -------------------------------------------------------------------------------------


def completion_to_openai(
    completions: Sequence[chat_pb2.ChatCompletion],
    request: CompletionsRequest,
    cmpl_id: str,
    created: int,
) -> dict[str, Any]:
    """The ``text_completion`` object for the finished chat completions, one per prompt: choices
    in OpenAI's order (prompt ``i``'s choice ``j`` at index ``i * n + j``), usage added up."""
    n = request.params.n if request.params.HasField("n") else 1
    bodies = [chat_completion_to_openai(completion) for completion in completions]
    choices = []
    for i, (prompt, body) in enumerate(zip(request.prompts, bodies, strict=True)):
        for choice in body["choices"]:
            message = choice.get("message") or {}
            text = said(message)
            choices.append(
                {
                    "text": prompt + text if request.echo else text,
                    "index": i * n + choice["index"],
                    "logprobs": _legacy_logprobs(choice.get("logprobs"), request, 0),
                    "finish_reason": choice["finish_reason"],
                }
            )
    out = _envelope(bodies[0], request, cmpl_id, created, choices)
    usages = [body["usage"] for body in bodies if body.get("usage")]
    if len(bodies) > 1 and usages:
        out["usage"] = _added(usages)
    return out


def _added(usages: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {key: sum(int(usage.get(key) or 0) for usage in usages) for key in keys}


class CompletionChunks:
    """Turns one ChatStream's chunks into ``text_completion`` chunks, keeping per choice what a
    stream needs: whether its echo went out, and where its text has reached (``text_offset``)."""

    def __init__(self, request: CompletionsRequest, cmpl_id: str, created: int) -> None:
        self._request = request
        self._id = cmpl_id
        self._created = created
        self._offsets: dict[int, int] = {}  # per choice index: characters sent so far
        # per choice index: the bytes of a character its last chunk's tokens began (a
        # byte-level token of part of one), which the next chunk's complete
        self._unfinished: dict[int, bytearray] = {}

    def feed(self, chunk: chat_pb2.ChatCompletionChunk) -> dict[str, Any] | None:
        """The chunk's ``text_completion`` chunk; ``None`` when it carries nothing to say (a
        role-only opening delta)."""
        body = chunk_to_openai(chunk)
        choices = []
        for choice in body["choices"]:
            index = choice["index"]
            delta = choice.get("delta") or {}
            text = said(delta)
            if index not in self._offsets and self._request.echo:
                text = self._request.prompt + text
            offset = self._offsets.get(index, 0)
            self._offsets[index] = offset + len(text)
            unfinished = None
            if self._request.logprobs is not None:  # else no offsets: nothing kept
                unfinished = self._unfinished.setdefault(index, bytearray())
            logprobs = _legacy_logprobs(choice.get("logprobs"), self._request, offset, unfinished)
            finish = choice["finish_reason"]
            if text or finish or logprobs:
                choices.append(
                    {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}
                )
        if not choices and not body.get("usage"):
            return None
        return _envelope(body, self._request, self._id, self._created, choices)


def _envelope(
    body: dict[str, Any],
    request: CompletionsRequest,
    cmpl_id: str,
    created: int,
    choices: list[dict[str, Any]],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": cmpl_id,
        "object": "text_completion",
        "created": created,
        "model": body.get("model") or request.params.model,
        "choices": choices,
    }
    if body.get("system_fingerprint"):
        out["system_fingerprint"] = body["system_fingerprint"]
    if body.get("usage"):
        out["usage"] = body["usage"]
    return out


def _legacy_logprobs(
    value: Any, request: CompletionsRequest, offset: int, unfinished: bytearray | None = None
) -> dict[str, list[Any]] | None:
    """Chat logprobs (``{"content": [{token, logprob, top_logprobs}]}``) in the legacy shape,
    ``text_offset`` counting characters from ``offset`` (``unfinished``: a stream's bytes of a
    character an earlier chunk began, see `_text_offsets`); ``None`` when not asked for or when the
    upstream gave none (a provider without logprobs). Each ``top_logprobs`` holds the sampled
    token too, as OpenAI's legacy API says ("up to logprobs+1 elements"): ``logprobs: 0`` is
    that token's alone, where the chat call's ``top_logprobs: 0`` lists none."""
    if request.logprobs is None or not isinstance(value, dict):
        return None
    entries = [e for e in value.get("content") or [] if isinstance(e, dict)]
    out: dict[str, list[Any]] = {
        "tokens": [],
        "token_logprobs": [],
        "top_logprobs": [],
        "text_offset": [],
    }
    offsets = _text_offsets(entries, offset, bytearray() if unfinished is None else unfinished)
    for entry, at in zip(entries, offsets, strict=True):
        token = str(entry.get("token", ""))
        out["tokens"].append(token)
        out["token_logprobs"].append(entry.get("logprob"))
        top = [t for t in entry.get("top_logprobs") or [] if isinstance(t, dict)]
        tops = {str(t.get("token", "")): t.get("logprob") for t in top}
        tops.setdefault(token, entry.get("logprob"))
        out["top_logprobs"].append(tops)
        out["text_offset"].append(at)
    return out if entries else None


def _text_offsets(entries: list[dict[str, Any]], start: int, unfinished: bytearray) -> list[int]:
    """Where each token starts in the text, in characters from `start`: counted by the UTF-8
    `bytes` each entry carries (OpenAI's, DeepSeek's…), so a token of part of a character (its
    `token` the escaped bytes, `\\xf0\\x9f`, 8 characters of no text) moves the offset by what
    it adds to the text (a whole character when it completes one); by the token's own text
    when it carries none. `unfinished`: the bytes of a character begun before these entries
    (a stream's earlier chunk), in place: those these entries leave unfinished."""
    out: list[int] = []
    at, pending = start, bytes(unfinished)  # pending: the bytes of a character not yet complete
    for entry in entries:
        out.append(at)
        raw = entry.get("bytes")
        try:  # a list of ints 0..255; else the token's text
            data = bytes(raw) if isinstance(raw, list) else None
        except (TypeError, ValueError):
            data = None
        if data is None:
            flushed, _ = codecs.utf_8_decode(pending, "replace", True)
            at, pending = at + len(flushed) + len(str(entry.get("token", ""))), b""
            continue
        text, used = codecs.utf_8_decode(pending + data, "replace", False)
        at, pending = at + len(text), (pending + data)[used:]
    unfinished[:] = pending
    return out
