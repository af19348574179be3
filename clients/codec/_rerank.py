"""A rerank request's body (Cohere v2's, which Jina, vLLM, Voyage-style servers and LiteLLM
also take) checked and made plain: the same checks at the edge (`media_params_from_openai`)
and in the router (for gRPC callers that write `params_json` themselves).

Followed: https://docs.cohere.com/reference/rerank (v2: `model`, `query`, `documents` as
strings, `top_n`, `max_tokens_per_doc`), https://jina.ai/reranker (`documents` may be objects
`{"text": ...}`, `return_documents`)."""

from __future__ import annotations

from typing import Any

from clients.codec._json import asks_stream, at_index, fail_type, missing
from clients.errors import InvalidRequestError

__all__ = ["rerank_documents", "rerank_fields"]

# Fields whose value is a whole number of at least 1 when set.
_COUNTS = ("top_n", "max_tokens_per_doc")


def rerank_fields(fields: dict[str, Any], *, max_documents: int | None = None) -> dict[str, Any]:
    """`fields` (the body but `model`) with `documents` as strings (a `{"text": ...}` object
    as its text). Raises InvalidRequestError naming the field: `query` not a non-empty string,
    `documents` not a non-empty list of those (or more than `max_documents`), `top_n` or
    `max_tokens_per_doc` not a whole number ≥ 1, `return_documents` not a boolean, `stream`
    true or no boolean (`asks_stream`'s reading: a form's "False" is false)."""
    query = fields.get("query")
    if query is None:
        missing("query")
    if not isinstance(query, str):
        fail_type("query", "a string", query)
    if not query.strip():
        raise InvalidRequestError("'query' must not be empty.", param="query")
    documents = rerank_documents(fields.get("documents"))
    if max_documents is not None and len(documents) > max_documents:
        raise InvalidRequestError(
            f"'documents' has {len(documents)} documents; at most {max_documents} may be "
            "reranked in one call.",
            param="documents",
        )
    for name in _COUNTS:
        value = fields.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            fail_type(name, "an integer", value)
        if value < 1:
            raise InvalidRequestError(
                f"Invalid value for '{name}': {value}. It must be at least 1.",
                param=name,
            )
    returned = fields.get("return_documents")
    if returned is not None and not isinstance(returned, bool):
        fail_type("return_documents", "a boolean", returned)
    # Refused here, not by the edge's streaming path: that is a MediaStream call, which would
    # ask a rerank client (`embed` scope) for the `chat` scope and name no field.
    if asks_stream(fields):  # the one reading (a form's "False" is false)
        raise InvalidRequestError("A rerank answers whole: leave 'stream' unset.", param="stream")
    return {**fields, "documents": documents}


def rerank_documents(value: Any) -> list[str]:
    """The texts of a request's `documents`: strings, or objects with a string `text`
    (Jina's, Cohere v1's). Raises InvalidRequestError naming the document."""
    if value is None:
        missing("documents")
    if not isinstance(value, list):
        fail_type("documents", "an array", value)
    if not value:
        raise InvalidRequestError("'documents' must not be empty.", param="documents")
    texts: list[str] = []
    for index, document in enumerate(value):
        path = at_index("documents", index)
        text = document.get("text") if isinstance(document, dict) else document
        if not isinstance(text, str):
            fail_type(path, 'a string or an object {"text": string}', document)
        texts.append(text)
    return texts
