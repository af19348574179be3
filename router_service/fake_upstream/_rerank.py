"""Rerank, answered deterministically in each API's shape:

- `POST /rerank` and `/v1/rerank` (Jina's, vLLM's, Infinity's): `{"id", "model", "results":
  [{"index", "relevance_score", "document"?: {"text"}}], "usage": {"total_tokens"}}`; a
  `rerank-2*` or `rerank-lite*` model (Voyage's names) answers as Voyage does, `{"object":
  "list", "data": [...], "model", "usage"}`, and reads `top_k` (never `top_n`, as Voyage);
- `POST /v2/rerank` (Cohere's): `{"id", "results": [{"index", "relevance_score"}], "meta":
  {"billed_units": {"search_units": 1}}}`.

A document's score is the share of the query's words it contains (`overlap_score`), best first,
cut to `top_n` (Voyage's `top_k`: each API reads its own name only); `document` when
`return_documents` is true (not Cohere's). Documents are strings (or Jina's `{"text"}`
objects at /v1). Scenarios (errors, rate limits, faults per key and model) apply as to chat
(`_openai.handle`).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from . import _openai
from ._dialects import COHERE
from ._faults import Call, send_answer, send_error
from ._native import words

__all__ = ["add_routes", "overlap_score"]

_WORD = re.compile(r"\w+")


def overlap_score(query: str, document: str) -> float:
    """The share of the query's distinct words (case-blind) that `document` contains."""
    asked = set(_WORD.findall(query.lower()))
    found = set(_WORD.findall(document.lower()))
    return round(len(asked & found) / len(asked), 6) if asked else 0.0


def _documents(value: Any) -> list[str] | None:
    if not isinstance(value, list) or not value:
        return None
    texts = [v.get("text") if isinstance(v, dict) else v for v in value]
    strings = [t for t in texts if isinstance(t, str)]
    return strings if len(strings) == len(texts) else None


def _voyage(model: str) -> bool:
    return model.startswith(("rerank-2", "rerank-lite"))


def _ranked(call: Call, *, cohere: bool) -> tuple[list[dict[str, Any]], int] | str:
    """(results best first, tokens read), or what is wrong with the request."""
    body = call.body
    query, documents = body.get("query"), _documents(body.get("documents"))
    if not isinstance(query, str) or not query:
        return "'query' is a required property"
    if documents is None:
        return "'documents' must be a non-empty list of strings"
    name = "top_k" if _voyage(call.record.model) else "top_n"
    top = body.get(name)
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 1):
        return f"'{name}' must be a positive integer"
    scores = [overlap_score(query, document) for document in documents]
    order = sorted(range(len(documents)), key=lambda i: -scores[i])[:top]
    results: list[dict[str, Any]] = []
    for i in order:
        result: dict[str, Any] = {"index": i, "relevance_score": scores[i]}
        if not cohere and body.get("return_documents") is True:
            result["document"] = {"text": documents[i]}
        results.append(result)
    return results, words(query, *documents)


async def _openai_rerank(call: Call) -> web.StreamResponse:
    ranked = _ranked(call, cohere=False)
    if isinstance(ranked, str):
        return await send_error(call, 400, ranked, "bad_request")
    results, tokens = ranked
    model, usage = call.record.model, {"total_tokens": tokens}
    if _voyage(model):
        return await send_answer(
            call, {"object": "list", "data": results, "model": model, "usage": usage}
        )
    ident = f"rerank-fake-{call.record.seq}"
    return await send_answer(
        call, {"id": ident, "model": model, "results": results, "usage": usage}
    )


async def _cohere_rerank(call: Call) -> web.StreamResponse:
    if not call.record.model:
        return await send_error(call, 400, "invalid request: model is required", "bad_request")
    ranked = _ranked(call, cohere=True)
    if isinstance(ranked, str):
        return await send_error(call, 400, f"invalid request: {ranked}", "bad_request")
    results, _ = ranked
    meta = {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}
    return await send_answer(
        call, {"id": f"fake-rerank-{call.record.seq}", "results": results, "meta": meta}
    )


async def _openai_route(request: web.Request) -> web.StreamResponse:
    return await _openai.handle(request, _openai_rerank)


async def _cohere_route(request: web.Request) -> web.StreamResponse:
    return await _openai.handle(request, _cohere_rerank, dialect=COHERE)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/rerank", _openai_route)
    app.router.add_post("/v1/rerank", _openai_route)
    app.router.add_post("/v2/rerank", _cohere_route)
