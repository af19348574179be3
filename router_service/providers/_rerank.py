"""A rerank on the wire: the body an adapter sends for a rerank `MediaCall`, and the one answer
the caller gets whatever the upstream's shape.

Upstream answers read (each `{"index", "relevance_score"}` per scored document):
- Jina, vLLM, Infinity (`POST /v1/rerank`): `{"results": [...], "usage": {"total_tokens"}}`
  (https://jina.ai/reranker, vLLM's rerank API);
- Cohere (`POST /v2/rerank`): `{"id", "results": [...], "meta": {"billed_units":
  {"search_units"}}}` (https://docs.cohere.com/reference/rerank);
- Voyage (`POST /v1/rerank`): `{"data": [...], "usage": {"total_tokens"}}`
  (https://docs.voyageai.com/reference/reranker-api). Voyage's request names the count
  `top_k`, not `top_n` (which it does not read): a Voyage deployment (`voyage_rerank`) is sent
  `top_k`.
The caller's answer is Cohere v2's, so its SDK reads it: `{"id", "model", "results": [{"index",
"relevance_score", "document"?: {"text"}}], "meta"?: {"billed_units": {"search_units"}},
"usage"?: {"total_tokens"}}`, best first, at most `top_n`; `model` is the name the caller
asked for, `document` the caller's own text when it asked for `return_documents`. `meta` only
when the upstream billed search units (Cohere): a search unit is Cohere's billing (a query with
up to 100 documents, long documents counting as several by its own tokenizer), which no other
upstream bills by, and which the router cannot count for it; those report tokens (`usage`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import orjson

from clients import asks_stream, rerank_documents
from clients.switchboard.v1 import chat_pb2, media_pb2
from router_service.errors import UpstreamFailure
from router_service.providers._base import MediaCall, media_unsupported
from router_service.providers._transport import MAPPING_ERRORS, malformed

__all__ = ["rerank_body", "rerank_result", "rerank_served", "voyage_rerank"]

JsonObject = dict[str, Any]

# Voyage's rerankers: rerank-2.5, rerank-2.5-lite, rerank-2, rerank-2-lite, rerank-1,
# rerank-lite-1 (https://docs.voyageai.com/docs/reranker); Cohere's are `rerank-v3.5`,
# `rerank-english-v3.0`: a digit or `lite-` right after `rerank-` is Voyage's.
_VOYAGE_MODEL = re.compile(r"rerank-(lite-)?\d")


def voyage_rerank(base_url: str, upstream_model: str) -> bool:
    """Whether an OpenAI-format deployment is Voyage's API (its host `api.voyageai.com`, or
    one of Voyage's reranker names behind a proxy): its request takes `top_k` for `top_n`."""
    host = urlsplit(base_url).hostname or ""
    return (
        host == "voyageai.com"
        or host.endswith(".voyageai.com")
        or bool(_VOYAGE_MODEL.match(upstream_model))
    )


def rerank_body(call: MediaCall, *, cohere: bool = False, voyage: bool = False) -> JsonObject:
    """The caller's fields with the deployment's upstream model and the documents as strings.
    Cohere v2 has no `return_documents` (the router adds the texts itself): left out there.
    Voyage reads `top_k` (and ignores `top_n`): `top_n` is sent as `top_k` there."""
    fields: JsonObject = orjson.loads(call.params.params_json or "{}")
    fields["model"] = call.upstream_model
    fields["documents"] = rerank_documents(fields.get("documents"))
    if fields.get("stream") is not None:  # only ever false (`rerank_fields`): a form's "False"
        fields["stream"] = asks_stream(fields)  # as the boolean a strict upstream takes
    if cohere:
        fields.pop("return_documents", None)
    if voyage and "top_n" in fields:
        fields["top_k"] = fields.pop("top_n")
    return fields


@contextmanager
def rerank_served(kind: str) -> Iterator[None]:
    """An OpenAI-format server's 404 at /rerank (OpenAI's own API, a chat-only server, one
    that does not serve this model), or its 400 (501) saying the model cannot rerank (vLLM's
    "The model does not support Rerank (Score) API" for a model served without the score
    task; llama.cpp's 501 "This server does not support reranking"), is this deployment's
    UNSUPPORTED_INPUT: not the caller's 404 or 400 (it named a group that exists, with a good
    body), and no cooldown (the deployment's chats are fine; a caller must not be able to cool
    a chat deployment by reranking with it). The group's next deployment answers; the caller
    gets a 400 only when none could."""
    try:
        yield
    except UpstreamFailure as failure:
        if not _cannot_rerank(failure):
            raise
        raise media_unsupported(kind, media_pb2.MEDIA_OPERATION_RERANK) from failure


# What vLLM (400), llama.cpp (501) and their like say of a model or server that cannot rerank.
_NO_RERANK = re.compile(r"(does not|doesn't|do not) support (the )?(rerank|score)", re.IGNORECASE)


def _cannot_rerank(failure: UpstreamFailure) -> bool:
    if failure.upstream_status == 404:
        return True
    if failure.upstream_status not in (400, 501):
        return False
    said = failure.upstream_error or {}
    return bool(_NO_RERANK.search(f"{failure.message} {said.get('message', '')}"))


def rerank_result(data: JsonObject, call: MediaCall) -> media_pb2.MediaResult:
    """The caller's answer to the upstream's `data`; one it cannot read is the upstream's
    failure (UPSTREAM_ERROR: the group's next deployment answers)."""
    fields: JsonObject = orjson.loads(call.params.params_json or "{}")
    documents = rerank_documents(fields.get("documents"))
    try:
        results = _scored(data, len(documents))
        tokens = _tokens(data)
        units = _search_units(data)
    except MAPPING_ERRORS as exc:
        raise malformed("rerank answer", exc) from exc
    results.sort(key=lambda scored: -scored["relevance_score"])  # stable: ties keep order
    top_n = fields.get("top_n")
    if isinstance(top_n, int):
        del results[top_n:]
    if fields.get("return_documents") is True:
        for scored in results:
            scored["document"] = {"text": documents[scored["index"]]}
    ident = data.get("id")
    answer: JsonObject = {
        "id": ident if isinstance(ident, str) and ident else str(uuid.uuid4()),
        "model": call.requested_model or call.upstream_model,
        "results": results,
    }
    if units is not None:
        answer["meta"] = {"billed_units": {"search_units": units}}
    result = media_pb2.MediaResult(content_type="application/json")
    if tokens is not None:
        answer["usage"] = {"total_tokens": tokens}
        # All input, as an embedding's: priced at the deployment's input price.
        result.usage.CopyFrom(chat_pb2.Usage(prompt_tokens=tokens, total_tokens=tokens))
    result.body = orjson.dumps(answer)
    return result


def _scored(data: JsonObject, count: int) -> list[JsonObject]:
    """`results` (Jina's, vLLM's, Cohere's) or `data` (Voyage's): each a document's index
    among the `count` sent and its score. At least one (every upstream scores each document
    sent, or its `top_n`: never none), and no document twice."""
    items = data["results"] if "results" in data else data["data"]
    if not isinstance(items, list):
        raise TypeError(f"results is {type(items).__name__}, not a list")
    if not items:
        raise ValueError(f"no results for the {count} documents")
    scored, seen = [], set()
    for item in items:
        index, score = item["index"], item["relevance_score"]
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
            raise ValueError(f"index {index!r} names none of the {count} documents")
        if index in seen:
            raise ValueError(f"document {index} is scored twice")
        seen.add(index)
        if not isinstance(score, int | float) or isinstance(score, bool):
            raise TypeError(f"relevance_score {score!r} is no number")
        scored.append({"index": index, "relevance_score": float(score)})
    return scored


def _tokens(data: JsonObject) -> int | None:
    """The tokens the upstream says it read (`usage.total_tokens`; Cohere reports none)."""
    usage = data.get("usage")
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def _search_units(data: JsonObject) -> int | None:
    """Cohere's billed search units; None from an upstream that bills none (tokens instead)."""
    meta = data.get("meta")
    billed = meta.get("billed_units") if isinstance(meta, dict) else None
    units = billed.get("search_units") if isinstance(billed, dict) else None
    return int(units) if isinstance(units, int | float) and not isinstance(units, bool) else None
