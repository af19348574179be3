"""Gemini's embedContent / batchEmbedContents bodies → the OpenAI embeddings body the edge
parses for `/v1/embeddings`, their answers back; and the router's models as Gemini's `Model`.

Followed: https://ai.google.dev/api/embeddings (EmbedContentRequest: content, taskType, title,
outputDimensionality; ContentEmbedding `values`) and https://ai.google.dev/api/models (Model).
`taskType` and `title` are hints for Google's own embedding models: carried in the body's
`gemini_only` (`GEMINI_ONLY`), which Google's deployments (Gemini API, Vertex) read and others drop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec._json import at, at_index, expect_int, expect_list, expect_object, expect_str
from clients.codec.gemini._carried import GEMINI_ONLY
from clients.codec.gemini._request import model_name
from clients.codec.gemini._tables import EMBED_METHODS, METHODS
from clients.errors import InvalidRequestError
from clients.switchboard.v1.router_service_pb2 import ModelInfo

__all__ = ["embeddings_body", "embeddings_to_gemini", "model_to_gemini"]

JsonObject = dict[str, Any]

_HINTS = ("taskType", "title")  # the same for every text of a call (google-genai sends one)
_KNOWN = frozenset({"model", "content", "outputDimensionality", *_HINTS})
Read = tuple[str, int | None, JsonObject]  # a request's text, dimensions and hints


def embeddings_body(model: str, body: Mapping[str, Any], batch: bool) -> JsonObject:
    """The OpenAI embeddings body for an embedContent body (`batch`: a batchEmbedContents one,
    whose requests are embedded in one call and must name the path's model)."""
    if not batch:
        text, dimensions, hints = _request(model, body, "")
        out: JsonObject = {"model": model, "input": text}
    else:
        unknown = sorted(set(body) - {"requests"})
        if unknown:
            raise InvalidRequestError(f"{unknown[0]}: not a batchEmbedContents field", unknown[0])
        requests = expect_list(body.get("requests"), "requests")
        if not requests:
            raise InvalidRequestError("requests: at least one request is required", "requests")
        read = [_request(model, r, at_index("requests", i)) for i, r in enumerate(requests)]
        if len({d for _, d, _ in read}) > 1:
            message = "requests: every request must ask for the same outputDimensionality"
            raise InvalidRequestError(message, "requests")
        if any(h != read[0][2] for _, _, h in read):
            message = "requests: every request must ask for the same taskType and title"
            raise InvalidRequestError(message, "requests")
        out = {"model": model, "input": [text for text, _, _ in read]}
        dimensions, hints = read[0][1], read[0][2]
    if dimensions is not None:
        out["dimensions"] = dimensions
    if hints:
        out[GEMINI_ONLY] = hints
    return out


def _request(model: str, value: Any, path: str) -> Read:
    body = expect_object(value, path or "body")
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        where = at(path, unknown[0])
        raise InvalidRequestError(
            f"{where}: not supported by this gateway's embedContent "
            f"(supported: {', '.join(sorted(_KNOWN))})",
            where,
        )
    if "model" in body and model_name(expect_str(body["model"], at(path, "model"))) != model:
        where = at(path, "model")
        raise InvalidRequestError(f"{where}: must be the model of the request's URL", where)
    where = at(path, "content")
    content = expect_object(body.get("content"), where)
    texts = []
    for i, part in enumerate(expect_list(content.get("parts"), at(where, "parts"))):
        part_path = at_index(at(where, "parts"), i)
        part = expect_object(part, part_path)
        if "text" not in part:
            raise InvalidRequestError(f"{part_path}: only text is embedded here", part_path)
        texts.append(expect_str(part["text"], at(part_path, "text")))
    hints = {k: expect_str(body[k], at(path, k)) for k in _HINTS if k in body}
    dimensions = body.get("outputDimensionality")
    if dimensions is None:
        return " ".join(texts), None, hints
    where = at(path, "outputDimensionality")
    # Refused here (as the OpenAI body's `dimensions` would be): named as the caller sent it.
    size = expect_int(dimensions, where)
    if size < 1:
        raise InvalidRequestError(f"{where}: must be at least 1, not {size}", where)
    return " ".join(texts), size, hints


def embeddings_to_gemini(result: Mapping[str, Any], batch: bool) -> JsonObject:
    """An OpenAI embeddings list (float vectors) as embedContent's or batchEmbedContents'
    answer."""
    data = sorted(result.get("data") or (), key=lambda item: int(item.get("index") or 0))
    embeddings = [{"values": list(item.get("embedding") or ())} for item in data]
    if batch:
        return {"embeddings": embeddings}
    return {"embedding": embeddings[0] if embeddings else {"values": []}}


def model_to_gemini(model: ModelInfo) -> JsonObject:
    """A model the caller may use as Gemini's Model, no limit said (the router knows none):
    one the router says serves embeddings (`ModelInfo.embeddings`) lists the embed methods and
    countTokens, as Gemini's embedding models do (a caller finding chat models by
    `generateContent`, Google's documented way, passes over it); any other, every method (a
    group that does not say it may serve embeddings)."""
    return {
        "name": f"models/{model.id}",
        "baseModelId": model.id,
        "version": "switchboard",
        "displayName": model.id,
        "description": f"Switchboard model {model.id} ({len(model.members)} members)",
        "supportedGenerationMethods": list(EMBED_METHODS if model.embeddings else METHODS),
    }
