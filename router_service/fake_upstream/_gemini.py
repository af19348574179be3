"""Gemini API (v1beta) routes: `POST /v1beta/models/{model}:generateContent`,
`:streamGenerateContent?alt=sse`, `:embedContent`, `:batchEmbedContents`, `GET /v1beta/models`.

Shapes from https://ai.google.dev/api/generate-content and https://ai.google.dev/api/embeddings
(batchEmbedContents takes at most 100 requests a call, as Gemini's own 400 says beyond that).
The key comes from `x-goog-api-key` (or `?key=`), the model and the streaming flag from the path.
With `generationConfig.thinkingConfig.includeThoughts` (and a thinkingBudget other than 0), the
answer's thought summary (`Scenario.reasoning`, else `THOUGHTS`) comes first as `thought: true`
parts, streamed a word a part, and is counted in usageMetadata.thoughtsTokenCount
(https://ai.google.dev/gemini-api/docs/thinking). With `generationConfig.responseLogprobs`, each
candidate's text has a `logprobsResult` (chosenCandidates, topCandidates of `logprobs` tokens
each) and `avgLogprobs`: the OpenAI fake's made-up logprobs of the same text
(https://ai.google.dev/api/generate-content#LogprobsResult). With `generationConfig.candidateCount`,
each response (each streamed event too) carries that many candidates, all the same answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from . import _responses as R
from ._content import gemini_problem
from ._dialects import GEMINI
from ._faults import Call, run_stream, send_answer, send_error
from ._native import RequestView, chat_answer, words
from ._openai import handle

_METHODS = ("generateContent", "streamGenerateContent", "embedContent", "batchEmbedContents")
# The thought summary of an answer whose scenario says none.
THOUGHTS = "Thinking it over."
# The most requests one batchEmbedContents call takes (Gemini's 400 beyond it).
BATCH_EMBED_MAX = 100


def _texts(content: Any) -> list[str]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [str(p["text"]) for p in parts or [] if isinstance(p, dict) and "text" in p]


def _view(body: dict[str, Any]) -> RequestView:
    contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
    user = [c for c in contents if c.get("role", "user") == "user" and _texts(c)]
    last = contents[-1] if contents else {}
    answered = any("functionResponse" in p for p in last.get("parts") or [] if isinstance(p, dict))
    tools = body.get("tools") or [{}]
    declarations = tools[0].get("functionDeclarations") or [] if isinstance(tools[0], dict) else []
    first = str(declarations[0].get("name")) if declarations else None
    system = " ".join(_texts(body.get("systemInstruction")))
    all_text = " ".join(t for c in contents for t in _texts(c))
    return RequestView(
        " ".join(_texts(user[-1])) if user else "", words(system, all_text), first, answered
    )


def _thoughts(body: dict[str, Any], reasoning: str | None) -> str | None:
    """The thought summary to answer with: asked for (includeThoughts) and thinking not off."""
    config = body.get("generationConfig")
    thinking = config.get("thinkingConfig") if isinstance(config, dict) else None
    if not isinstance(thinking, dict) or thinking.get("includeThoughts") is not True:
        return None
    return None if thinking.get("thinkingBudget") == 0 else reasoning or THOUGHTS


def _usage(answer: R.ChatAnswer, done: bool = True) -> dict[str, int]:
    completion = answer.completion_tokens if done else 0
    thoughts = R.count_words(answer.reasoning or "") if done else 0
    out = {
        "promptTokenCount": answer.prompt_tokens,
        "candidatesTokenCount": completion,
        "totalTokenCount": answer.prompt_tokens + completion + thoughts,
    }
    return out | ({"thoughtsTokenCount": thoughts} if thoughts else {})


def _asked_logprobs(body: dict[str, Any]) -> int | None:
    """The top candidates a step asked for (`logprobs`, 0 when unset) when the request asked
    for logprobs (`responseLogprobs`); else None."""
    config = body.get("generationConfig")
    if not isinstance(config, dict) or config.get("responseLogprobs") is not True:
        return None
    top = config.get("logprobs")
    return top if isinstance(top, int) else 0


def _logprobs_result(answer: R.ChatAnswer, texts: list[str]) -> dict[str, Any]:
    """Gemini's `logprobsResult` of these pieces of text (the made-up logprobs the OpenAI fake
    gives them, `R.piece_logprobs`), when they were asked for."""
    if answer.top_logprobs is None or not texts:
        return {}
    steps = [e for entries in R.piece_logprobs(texts, answer.top_logprobs) for e in entries]
    chosen = [{"token": e["token"], "logProbability": e["logprob"]} for e in steps]
    top = [
        {
            "candidates": [
                {"token": t["token"], "logProbability": t["logprob"]} for t in e["top_logprobs"]
            ]
        }
        for e in steps
    ]
    total = sum(e["logprob"] for e in steps)
    result = {"topCandidates": top, "chosenCandidates": chosen, "logProbabilitySum": total}
    return {"logprobsResult": result, "avgLogprobs": total / len(steps)}


def _response(
    answer: R.ChatAnswer,
    parts: list[dict[str, Any]],
    finish: str | None,
    said: list[str] | None = None,
) -> Any:
    """A GenerateContentResponse of `parts`; the logprobs asked for are those of the pieces
    `said` (default: its text parts; thoughts and calls have none)."""
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if said is None:
        said = [str(p["text"]) for p in parts if p.get("text") and not p.get("thought")]
    candidate |= _logprobs_result(answer, said)
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        # `candidateCount` candidates, all the same answer, each with its own logprobs.
        "candidates": [candidate | {"index": i} for i in range(answer.n)],
        "usageMetadata": _usage(answer, finish is not None),
        "modelVersion": answer.model,
        "responseId": answer.completion_id,
    }


def _answer_parts(answer: R.ChatAnswer) -> list[dict[str, Any]]:
    if answer.tool_name is not None:
        args = orjson.loads(answer.tool_arguments)
        call = {"id": f"fc-{answer.completion_id}", "name": answer.tool_name, "args": args}
        return [{"functionCall": call}]
    return [{"text": answer.text}]


def _thought_parts(answer: R.ChatAnswer, whole: bool) -> list[list[dict[str, Any]]]:
    """The answer's thoughts as parts: one (`whole`), or a word a part (each its own event)."""
    if answer.reasoning is None:
        return []
    pieces = [answer.reasoning] if whole else R.split_pieces(answer.reasoning, None)[1]
    return [[{"text": piece, "thought": True}] for piece in pieces]


def _unmatched_response(contents: list[Any]) -> str | None:
    """The id of a functionResponse that answers no functionCall of the conversation: Gemini 3
    matches results to calls by id."""
    turns = [c.get("parts") or [] for c in contents if isinstance(c, dict)]
    parts = [p for turn in turns for p in turn if isinstance(p, dict)]
    calls = {p["functionCall"].get("id") for p in parts if isinstance(p.get("functionCall"), dict)}
    for part in parts:
        response = part.get("functionResponse")
        if isinstance(response, dict) and response.get("id") and response["id"] not in calls:
            return str(response["id"])
    return None


def _stopped(answer: R.ChatAnswer, stops: Any) -> R.ChatAnswer:
    """The answer cut before the first of `generationConfig.stopSequences` it holds (Gemini
    says STOP, not which one)."""
    text = R.stop_text(answer.text, stops)
    if answer.tool_name is not None or text == answer.text:
        return answer
    text, pieces = R.split_pieces(text, None)
    return dataclasses.replace(answer, text=text, pieces=pieces)


async def generate(call: Call) -> web.StreamResponse:
    contents = call.body.get("contents")
    if not isinstance(contents, list) or not contents:
        return await send_error(call, 400, "* contents: contents is not specified", "bad_request")
    problem = gemini_problem(call.body, vertex=call.dialect is not GEMINI)
    if problem is not None:
        return await send_error(call, 400, problem, "bad_request")
    unmatched = _unmatched_response(contents)
    if unmatched is not None:
        message = f"function response id {unmatched!r} matches no function call"
        return await send_error(call, 400, message, "bad_request")
    answer = chat_answer(call, _view(call.body), f"fake-response-{call.record.seq}")
    answer = _stopped(answer, (call.body.get("generationConfig") or {}).get("stopSequences"))
    reasoning = _thoughts(call.body, call.scenario.reasoning)
    count = (call.body.get("generationConfig") or {}).get("candidateCount")
    answer = dataclasses.replace(
        answer,
        reasoning=reasoning,
        top_logprobs=_asked_logprobs(call.body),
        n=count if isinstance(count, int) and count > 0 else 1,
    )
    if call.scenario.finish_reason is not None:
        return await _withheld(call, answer, call.scenario.finish_reason)
    if not call.record.stream:
        parts = [p for ps in _thought_parts(answer, True) for p in ps] + _answer_parts(answer)
        said = [] if answer.tool_name is not None else answer.pieces
        return await send_answer(call, _response(answer, parts, "STOP", said))
    if call.request.query.get("alt") != "sse":
        return await send_error(call, 400, "the fake streams with alt=sse only", "bad_request")
    pieces = _thought_parts(answer, False)
    if answer.tool_name is not None:
        pieces.append(_answer_parts(answer))
    else:
        pieces += [[{"text": piece}] for piece in answer.pieces]
    events = [R.sse(_response(answer, parts, None)) for parts in pieces]
    events.append(R.sse(_response(answer, [{"text": ""}], "STOP")))
    return await run_stream(call, events, len(events) - 1)


async def _withheld(call: Call, answer: R.ChatAnswer, reason: str) -> web.StreamResponse:
    """An answer the filter withheld whole (`Scenario.finish_reason`, e.g. "SAFETY"): a
    candidate without text that ends with the reason, as Gemini sends one (a stream's last
    event), after its thoughts when they were asked for (a stream's events before)."""
    candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
    usage = _usage(answer, done=False)
    body = {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": answer.model,
        "responseId": answer.completion_id,
    }
    thoughts = _thought_parts(answer, not call.record.stream)
    if thoughts:  # they were made: counted, as Gemini counts them
        made = R.count_words(answer.reasoning or "")
        usage["thoughtsTokenCount"], usage["totalTokenCount"] = made, answer.prompt_tokens + made
    if not call.record.stream:
        if thoughts:
            candidate["content"] = {"role": "model", "parts": thoughts[0]}
        return await send_answer(call, body)
    events = [R.sse(_response(answer, parts, None)) for parts in thoughts]
    return await run_stream(call, [*events, R.sse(body)], len(events))


def dimensions(request: dict[str, Any]) -> int:
    dims = request.get("outputDimensionality", R.DEFAULT_EMBEDDING_DIMS)
    return dims if isinstance(dims, int) and not isinstance(dims, bool) and dims > 0 else 8


def _past_window(call: Call, texts: list[str]) -> str | None:
    """Gemini's refusal of an embeddings input past `Scenario.context_window` (its words)."""
    window = call.scenario.context_window
    longest = max(map(R.count_words, texts), default=0)
    if window is None or longest <= window:
        return None
    return (
        f"The input token count ({longest}) exceeds the maximum number of tokens allowed "
        f"({window})."
    )


async def _embed(call: Call) -> web.StreamResponse:
    text = " ".join(_texts(call.body.get("content")))
    if (refusal := _past_window(call, [text])) is not None:
        return await send_error(call, 400, refusal, "context_length")
    vector = R.embedding_vector(text, dimensions(call.body))
    return await send_answer(call, {"embedding": {"values": vector}})


async def _batch_embed(call: Call) -> web.StreamResponse:
    requests = call.body.get("requests")
    if not isinstance(requests, list) or not requests:
        return await send_error(call, 400, "* requests: must not be empty", "bad_request")
    if len(requests) > BATCH_EMBED_MAX:
        most = f"at most {BATCH_EMBED_MAX} requests can be in one batch"
        message = f"* BatchEmbedContentsRequest.requests: {most}"
        return await send_error(call, 400, message, "bad_request")
    texts = [" ".join(_texts(r.get("content"))) for r in requests if isinstance(r, dict)]
    if (refusal := _past_window(call, texts)) is not None:
        return await send_error(call, 400, refusal, "context_length")
    embeddings = [
        {"values": R.embedding_vector(" ".join(_texts(r.get("content"))), dimensions(r))}
        for r in requests
    ]
    return await send_answer(call, {"embeddings": embeddings})


_PRODUCERS: dict[str, Callable[[Call], Awaitable[web.StreamResponse]]] = {
    "generateContent": generate,
    "streamGenerateContent": generate,
    "embedContent": _embed,
    "batchEmbedContents": _batch_embed,
}


async def model_method(request: web.Request) -> web.StreamResponse:
    model, _, method = request.match_info["target"].rpartition(":")
    if method not in _METHODS or not model:
        raise web.HTTPNotFound()
    stream = method == "streamGenerateContent"
    return await handle(request, _PRODUCERS[method], dialect=GEMINI, model=model, stream=stream)


async def _models(call: Call) -> web.StreamResponse:
    return await send_answer(call, GEMINI.model_list(call.state.models))


async def list_models(request: web.Request) -> web.StreamResponse:
    return await handle(request, _models, dialect=GEMINI)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1beta/models/{target}", model_method)
    app.router.add_get("/v1beta/models", list_models)
