"""Amazon Bedrock InvokeModel for embedding models: `POST /model/{modelId}/invoke` with the
bodies of Amazon Titan Text Embeddings and Cohere Embed, checked as those models check them.

Shapes from https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
(Titan: one `inputText` per call; V2 takes `dimensions` 256 | 512 | 1024, `normalize`,
`embeddingTypes`, and answers only the types asked, `embedding` only when `float` is one
(BerriAI/litellm#14680); V1 nothing else) and model-parameters-embed-v3.html / -v4.html (Cohere: up
to 96 `texts` with an `input_type`; `embedding_types` makes the answer `embeddings_by_type`; v4
takes `output_dimension`). Both answers carry the input token count in the
`x-amzn-bedrock-input-token-count` header, Titan's also in its body. Requests are
authenticated as Converse's are (a bearer API key, or a SigV4 signature verified here). Any
other model id is refused as a malformed input, as Bedrock refuses a body the model does not
take. The vectors are the shared fake's (`embedding_vector`), of `dimensions` /
`output_dimension` or the fake's default size.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import _responses as R
from ._bedrock_dialect import BEDROCK, auth_problem
from ._cohere import EMBEDDING_TYPES, embedded
from ._faults import Call, send_answer, send_error, send_json
from ._native import words
from ._openai import handle

JsonObject = dict[str, Any]
COHERE_MAX_TEXTS = 96
_TITAN_V2_FIELDS = frozenset({"inputText", "dimensions", "normalize", "embeddingTypes"})
_COHERE_FIELDS = frozenset({"texts", "images", "input_type", "truncate", "embedding_types"})
_COHERE_V4_FIELDS = _COHERE_FIELDS | {"output_dimension", "max_tokens", "inputs"}
# Titan V2's `embeddingTypes`: `binary` is one 0 or 1 a dimension (the sign of the float).
_TITAN_TYPES: dict[str, Any] = {
    "float": lambda v: v,
    "binary": lambda v: [1 if x > 0 else 0 for x in v],
}
_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})
_TOKEN_COUNT = "x-amzn-bedrock-input-token-count"


def _family(model: str) -> str | None:
    """`titan-v2`, `titan`, `cohere-v4`, `cohere`, or None, from a model id, an inference
    profile id (`us.…`) or a foundation model ARN."""
    name = model.rsplit("/", 1)[-1]
    for candidate in (name, name.partition(".")[2]):
        for prefix, family in (
            ("amazon.titan-embed-text-v2", "titan-v2"),
            ("amazon.titan-embed", "titan"),
            ("cohere.embed-v4", "cohere-v4"),
            ("cohere.embed", "cohere"),
        ):
            if candidate.startswith(prefix):
                return family
    return None


def _malformed(detail: str) -> str:
    return f"Malformed input request: {detail}, please reformat your input and try again."


def _unknown_field(body: JsonObject, allowed: frozenset[str]) -> str | None:
    extra = sorted(set(body) - allowed)
    return _malformed(f"extraneous key [{extra[0]}] is not permitted") if extra else None


def titan_problem(body: JsonObject, v2: bool) -> str | None:
    """Why Titan would refuse the body (its ValidationException's message), or None."""
    unknown = _unknown_field(body, _TITAN_V2_FIELDS if v2 else frozenset({"inputText"}))
    if unknown is not None:
        return unknown
    text = body.get("inputText")
    if not isinstance(text, str) or not text:
        return _malformed("#/inputText: expected a string of minLength: 1")
    if "dimensions" in body and body["dimensions"] not in (256, 512, 1024):
        return _malformed(f"#/dimensions: {body['dimensions']} is not a valid enum value")
    kinds = body.get("embeddingTypes", ["float"])
    if not isinstance(kinds, list) or not kinds or not all(k in _TITAN_TYPES for k in kinds):
        return _malformed("#/embeddingTypes: is not a valid enum value")
    return None


def cohere_problem(body: JsonObject, v4: bool) -> str | None:
    """Why Cohere Embed would refuse the body, or None."""
    unknown = _unknown_field(body, _COHERE_V4_FIELDS if v4 else _COHERE_FIELDS)
    if unknown is not None:
        return unknown
    texts = body.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return _malformed("#/texts: expected type: JSONArray of strings")
    if len(texts) > COHERE_MAX_TEXTS:
        return _malformed(f"#/texts: expected maximum item count: 96, found: {len(texts)}")
    if body.get("input_type") not in _INPUT_TYPES:
        return _malformed("#/input_type: is not a valid enum value")
    if "output_dimension" in body and body["output_dimension"] not in (256, 512, 1024, 1536):
        return _malformed(f"#/output_dimension: {body['output_dimension']} is not a valid value")
    kinds = body.get("embedding_types", ["float"])
    if not isinstance(kinds, list) or not kinds or not all(k in EMBEDDING_TYPES for k in kinds):
        return _malformed("#/embedding_types: is not a valid enum value")
    return None


async def _titan(call: Call, v2: bool) -> web.StreamResponse:
    problem = titan_problem(call.body, v2)
    if problem is not None:
        return await send_error(call, 400, problem, "bad_request")
    text = str(call.body["inputText"])
    vector = R.embedding_vector(text, int(call.body.get("dimensions", R.DEFAULT_EMBEDDING_DIMS)))
    tokens = words(text)
    kinds = call.body.get("embeddingTypes", ["float"])  # checked by titan_problem
    answer: JsonObject = {"inputTextTokenCount": tokens}
    if "float" in kinds:  # only then: a binary-only answer has no `embedding`
        answer["embedding"] = vector
    if v2:
        answer["embeddingsByType"] = {k: _TITAN_TYPES[k](vector) for k in kinds}
    return await send_answer(call, answer, {_TOKEN_COUNT: str(tokens)})


async def _cohere(call: Call, v4: bool) -> web.StreamResponse:
    problem = cohere_problem(call.body, v4)
    if problem is not None:
        return await send_error(call, 400, problem, "bad_request")
    texts = [str(t) for t in call.body["texts"]]
    dims = int(call.body.get("output_dimension", R.DEFAULT_EMBEDDING_DIMS))
    vectors = [R.embedding_vector(t, dims) for t in texts]
    by_type = "embedding_types" in call.body
    kinds = call.body.get("embedding_types", ["float"])  # checked by cohere_problem
    answer = {
        "id": f"fake-embed-{call.record.seq}",
        "embeddings": {k: [embedded(t, dims, k) for t in texts] for k in kinds}
        if by_type
        else vectors,
        "response_type": "embeddings_by_type" if by_type else "embeddings_floats",
        "texts": texts,
    }
    return await send_answer(call, answer, {_TOKEN_COUNT: str(words(*texts))})


async def _invoke(call: Call) -> web.StreamResponse:
    refused = await auth_problem(call.request, call.state.aws_credentials)
    if refused is not None:
        status, message = refused
        return await send_json(call, status, BEDROCK.error_body(status, message), "auth_refused")
    family = _family(call.record.model)
    if family in ("titan", "titan-v2"):
        return await _titan(call, v2=family == "titan-v2")
    if family in ("cohere", "cohere-v4"):
        return await _cohere(call, v4=family == "cohere-v4")
    detail = f"the fake serves InvokeModel for embedding models only, not {call.record.model}"
    return await send_error(call, 400, _malformed(detail), "bad_request")


async def invoke(request: web.Request) -> web.StreamResponse:
    model = request.match_info["model_id"]
    return await handle(request, _invoke, dialect=BEDROCK, model=model, stream=False)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/model/{model_id:.+}/invoke", invoke)
