"""Gemini API (Generative Language, v1beta) answers → OpenAI chat dialect: a generateContent
response as a `chat.completion` (`completion`), streamGenerateContent's events as
`chat.completion.chunk`s (`StreamMapper`). The request's side is `_gemini_map`.

Followed:
- GenerateContentResponse, Candidate (content, finishReason, finishMessage), promptFeedback
  .blockReason, usageMetadata: https://ai.google.dev/api/generate-content
- Thought signatures (a functionCall part's `thoughtSignature`), given to callers where Gemini's
  own OpenAI-compatible endpoint puts them (`tool_calls[].extra_content.google.thought_signature`):
  https://ai.google.dev/gemini-api/docs/thought-signatures
- Thought summaries (parts with `thought: true`): https://ai.google.dev/gemini-api/docs/thinking.
  They are the answer's `reasoning_content`.
- Logprobs (a candidate's `logprobsResult`: `chosenCandidates`, one a decoding step, and
  `topCandidates`, that step's most likely tokens, each a token and its `logProbability`):
  https://ai.google.dev/api/generate-content#LogprobsResult. They are the choice's
  `logprobs.content`, in a stream each chunk's own tokens'.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from clients.codec.gemini import FILTERED_FINISH_REASONS, FINISH_BY_FINISH_REASON
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope
from router_service.providers import _mapping as M

JsonObject = dict[str, Any]


def filtered(reason: str, detail: str = "", *, index: int | None = None) -> UpstreamFailure:
    """Gemini's filter withheld the content: the prompt (`index` None: its blockReason) or the
    answer whole (the candidate `index`'s finishReason). OpenAI's error object says it, with
    Gemini's own words under `provider_error` (as the router restates Gemini's other errors),
    for the edge's Gemini entrance to say as Gemini does: `promptFeedback.blockReason`, or a
    candidate ending with its finishReason."""
    message = f"gemini withheld the content ({reason}){': ' + detail if detail else ''}"
    said: JsonObject
    if index is None:
        said = {"promptFeedback": {"blockReason": reason}}
    else:
        candidate = {"finishReason": reason, "index": index}
        said = {"candidates": [candidate | ({"finishMessage": detail} if detail else {})]}
    error: JsonObject = {"message": message, "type": "invalid_request_error"}
    error |= {"code": "content_filter", "provider_error": said}
    return UpstreamFailure(
        Outcome.CONTENT_FILTERED, message, upstream_status=400, upstream_error=error
    )


# Finish reasons that say the model failed to make its answer, not that the answer ended: a
# function call Gemini could not parse (MALFORMED_FUNCTION_CALL, `finishMessage` saying where),
# a call of a tool the request did not declare (UNEXPECTED_TOOL_CALL), a tool-calling loop past
# Gemini's limit (TOO_MANY_TOOL_CALLS), a replayed conversation missing a thought signature
# Gemini requires (MISSING_THOUGHT_SIGNATURE: another deployment, of another provider, may take
# it), a response Gemini itself calls malformed (MALFORMED_RESPONSE). That one answer's failure
# (no one's scope: the request goes on to the group's next, the deployment serves the next
# request), not an empty answer handed on as a whole one.
FAILED_FINISH_REASONS = frozenset(
    {
        "MALFORMED_FUNCTION_CALL",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "MISSING_THOUGHT_SIGNATURE",
        "MALFORMED_RESPONSE",
    }
)


def failed_answer(reason: str, detail: str = "", *, index: int = 0) -> UpstreamFailure:
    """The failure of a candidate that ended with one of `FAILED_FINISH_REASONS`: OpenAI's
    error object says it, with Gemini's own words under `provider_error`."""
    message = f"gemini failed to make its answer ({reason}){': ' + detail if detail else ''}"
    candidate = {"finishReason": reason, "index": index} | (
        {"finishMessage": detail} if detail else {}
    )
    error: JsonObject = {"message": message, "type": "server_error", "code": reason.lower()}
    error["provider_error"] = {"candidates": [candidate]}
    return UpstreamFailure(Outcome.UPSTREAM_ERROR, message, scope=Scope.NONE, upstream_error=error)


def check_prompt_blocked(data: Mapping[str, Any]) -> None:
    feedback = data.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        raise filtered(str(feedback["blockReason"]), "the prompt was blocked")


def usage(raw: Mapping[str, Any]) -> JsonObject:
    """Gemini's usageMetadata in OpenAI's words. It counts cache reads (implicit caching's hits
    and an explicit `cachedContent`'s tokens: cachedContentTokenCount) but no cache writes: an
    explicit cache is created and billed (storage by the hour) outside generateContent."""
    thoughts = int(raw.get("thoughtsTokenCount") or 0)
    # Tool-use prompt tokens (e.g. search results Gemini read) are input it was billed for.
    prompt = int(raw.get("promptTokenCount") or 0) + int(raw.get("toolUsePromptTokenCount") or 0)
    completion = int(raw.get("candidatesTokenCount") or 0) + thoughts
    return M.usage(
        prompt,
        completion,
        total=int(raw.get("totalTokenCount") or prompt + completion),
        cached=int(raw.get("cachedContentTokenCount") or 0),
        reasoning=thoughts,
    )


def finish_reason(raw: Any, called: bool) -> str | None:
    if not raw or raw == "FINISH_REASON_UNSPECIFIED":
        return None
    if raw in FILTERED_FINISH_REASONS:
        return "content_filter"
    reason = FINISH_BY_FINISH_REASON.get(str(raw), "stop")
    return "tool_calls" if called and reason == "stop" else reason


def candidate_delta(candidate: Mapping[str, Any], first_call: int, prefix: str) -> JsonObject:
    """A candidate's thoughts, text and function calls as an OpenAI message / delta (no role):
    thought parts are its `reasoning_content` (as a Claude answer's thinking is). A text part's
    thoughtSignature is not kept (Gemini validates only a function call's)."""
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[JsonObject] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if "text" in part:
            (thoughts if part.get("thought") else text).append(str(part["text"]))
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            call_id = str(call.get("id") or f"{prefix}_{first_call + len(calls)}")
            arguments = M.dump_arguments(call.get("args"))
            calls.append(M.tool_call(call_id, str(call.get("name", "")), arguments))
            if part.get("thoughtSignature"):
                signature = str(part["thoughtSignature"])
                calls[-1]["extra_content"] = {"google": {"thought_signature": signature}}
    thought = "".join(thoughts)  # a signature alone comes in an empty part: no reasoning
    delta: JsonObject = {"reasoning_content": thought} if thought else {}
    if text or not (calls or thought):
        delta["content"] = "".join(text)
    if calls:
        delta["tool_calls"] = calls
    return delta


def logprobs(candidate: Mapping[str, Any]) -> JsonObject:
    """A candidate's `logprobsResult` as an OpenAI choice's `logprobs` (its content tokens',
    each with its most likely alternatives): one entry a decoding step, the chosen candidate
    with that step's top candidates. Nothing when the candidate has none (not asked)."""
    result = candidate.get("logprobsResult")
    if not isinstance(result, dict) or not isinstance(result.get("chosenCandidates"), list):
        return {}
    chosen, tops = result["chosenCandidates"], result.get("topCandidates")
    tops = tops if isinstance(tops, list) else []
    content = []
    for step, token in enumerate(c for c in chosen if isinstance(c, dict)):
        top = tops[step] if step < len(tops) and isinstance(tops[step], dict) else {}
        alternatives = top.get("candidates") or []
        entry = _token_logprob(token)
        entry["top_logprobs"] = [_token_logprob(c) for c in alternatives if isinstance(c, dict)]
        content.append(entry)
    return {"logprobs": {"content": content, "refusal": None}}


def _token_logprob(candidate: Mapping[str, Any]) -> JsonObject:
    """A LogprobsResult.Candidate as OpenAI's token entry. Proto3 JSON leaves a zero out: a
    candidate without `logProbability` is a certain one (0.0)."""
    token = str(candidate.get("token") or "")
    logprob = float(candidate.get("logProbability") or 0.0)
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def completion(data: Mapping[str, Any], model: str, created: int) -> JsonObject:
    """An OpenAI `chat.completion` for a generateContent response."""
    check_prompt_blocked(data)
    candidates = [c for c in data.get("candidates") or [] if isinstance(c, dict)]
    if not candidates:
        raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "gemini returned no candidates")
    prefix = f"call_{data.get('responseId') or secrets.token_hex(6)}"
    choices = []
    for position, candidate in enumerate(candidates):
        delta = candidate_delta(candidate, 0, f"{prefix}_{position}")
        reason = candidate.get("finishReason")
        if reason in FAILED_FINISH_REASONS:
            detail = str(candidate.get("finishMessage") or "")
            raise failed_answer(str(reason), detail, index=int(candidate.get("index", position)))
        if (
            reason in FILTERED_FINISH_REASONS
            and not delta.get("content")
            and not delta.get("tool_calls")
        ):
            detail = str(candidate.get("finishMessage") or "")
            raise filtered(str(reason), detail, index=int(candidate.get("index", position)))
        message = M.assistant_message(delta.get("content") or "", delta.get("tool_calls") or [])
        if delta.get("reasoning_content"):
            message["reasoning_content"] = delta["reasoning_content"]
        finish = finish_reason(reason, bool(delta.get("tool_calls"))) or "stop"
        index = int(candidate.get("index", position))
        choice = {"index": index, "message": message, "finish_reason": finish}
        choices.append(choice | logprobs(candidate))
    raw_usage = data.get("usageMetadata")
    out = M.completion(
        str(data.get("responseId") or ""),
        created,
        str(data.get("modelVersion") or model),
        {},
        None,
        usage(raw_usage) if isinstance(raw_usage, dict) else None,
    )
    out["choices"] = choices
    return out


class StreamMapper:
    """streamGenerateContent?alt=sse events (each a GenerateContentResponse) → OpenAI chunks."""

    def __init__(self, model: str, created: int, *, thoughts_shown: bool = True) -> None:
        self.model = model
        self.created = created
        # Whether the caller sees thoughts (not `hides_reasoning`): only shown ones count as said.
        self._thoughts_shown = thoughts_shown
        self.id = ""
        self._prefix = f"call_{secrets.token_hex(6)}"
        self._calls: dict[int, int] = {}  # candidate index → tool calls sent
        self._sent: set[int] = set()  # candidates whose role was sent
        self._content_sent = False

    def feed(self, data: Mapping[str, Any]) -> list[JsonObject]:
        check_prompt_blocked(data)
        self.id = self.id or str(data.get("responseId") or "")
        self.model = str(data.get("modelVersion") or self.model)
        chunks: list[JsonObject] = []
        finished = False
        for position, candidate in enumerate(data.get("candidates") or []):
            index = int(candidate.get("index", position))
            chunks += self._candidate(index, candidate)
            finished = finished or bool(candidate.get("finishReason"))
        raw_usage = data.get("usageMetadata")
        if finished and isinstance(raw_usage, dict):
            chunks.append(
                M.chunk(self.id, self.created, self.model, None, usage_obj=usage(raw_usage))
            )
        return chunks

    def _candidate(self, index: int, candidate: Mapping[str, Any]) -> list[JsonObject]:
        sent = self._calls.get(index, 0)
        delta = candidate_delta(candidate, sent, f"{self._prefix}_{index}")
        calls = delta.get("tool_calls") or []
        for offset, call in enumerate(calls):
            call["index"] = sent + offset
        self._calls[index] = sent + len(calls)
        if index not in self._sent:
            self._sent.add(index)
            delta = {"role": "assistant", **delta}
        # Thoughts shown count: the filter's end is then the stream's finish, as after text.
        thought = self._thoughts_shown and delta.get("reasoning_content")
        said = delta.get("content") or thought or calls
        self._content_sent = self._content_sent or bool(said)
        raw = candidate.get("finishReason")
        if raw in FAILED_FINISH_REASONS:  # even after content: the answer is not whole
            raise failed_answer(str(raw), str(candidate.get("finishMessage") or ""), index=index)
        if raw in FILTERED_FINISH_REASONS and not self._content_sent:
            raise filtered(str(raw), str(candidate.get("finishMessage") or ""), index=index)
        reason = finish_reason(raw, self._calls[index] > 0)
        chunk = M.chunk(self.id, self.created, self.model, delta, finish_reason=reason)
        chunk["choices"][0].update({"index": index, **logprobs(candidate)})
        return [chunk]
