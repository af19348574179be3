"""Bedrock's embeddings: InvokeModel (`POST /model/{modelId}/invoke`) with each model family's
own body, chosen by the model id. Pure mapping; the adapter (`_bedrock.py`) sends.

- Amazon Titan Text Embeddings
  (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html):
  ONE text per call. V2 (`amazon.titan-embed-text-v2:0`) takes `{"inputText", "dimensions":
  256 | 512 | 1024, "normalize", "embeddingTypes"}`; V1 (`amazon.titan-embed-text-v1`, and the
  other Titan embedding models) `{"inputText"}` only. The answer is `{"embedding": [...],
  "inputTextTokenCount": n}`; V2's also `embeddingsByType` of the types asked (`float`,
  `binary`), and no `embedding` when `float` is not one (BerriAI/litellm#14680).
- Cohere Embed (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html):
  up to 96 texts per call, `{"texts", "input_type", "truncate", "embedding_types"}` (Embed v4,
  `cohere.embed-v4:0`, also `output_dimension`: 256 | 512 | 1024 | 1536; v3 gives 1024). The
  answer's `embeddings` is a list of vectors (`response_type: embeddings_floats`) or, when
  `embedding_types` was sent, `{"float": [...]}` (`embeddings_by_type`); its token count, when
  Bedrock gives one, is the `x-amzn-bedrock-input-token-count` header.

A model id may be an inference profile id (`us.cohere.embed-v4:0`) or a foundation model's ARN
(`arn:aws:bedrock:…:foundation-model/amazon.titan-embed-text-v2:0`); any other model (a chat
model, an application inference profile's ARN, which does not name its model) cannot be
embedded with here: UNSUPPORTED_INPUT, and the group's next deployment embeds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clients.switchboard.v1 import embeddings_pb2
from router_service.providers._batched import batches
from router_service.providers._embed_mapping import (
    COHERE_TYPES,
    embedding_passthrough,
    embedding_texts,
    vector_type,
)
from router_service.providers._mapping import unsupported

JsonObject = dict[str, Any]

COHERE_BATCH = 96  # texts per Cohere call, as Bedrock allows
TOKEN_COUNT_HEADER = "x-amzn-bedrock-input-token-count"
_TITAN_V2_DIMENSIONS = (256, 512, 1024)
_TITAN_TYPES = ("float", "binary")  # V2's `embeddingTypes`: `binary` is a 0 or 1 a dimension
_COHERE_V4_DIMENSIONS = (256, 512, 1024, 1536)
_COHERE_V3_DIMENSIONS = 1024


class Family(enum.Enum):
    TITAN_V1 = "amazon.titan-embed"
    TITAN_V2 = "amazon.titan-embed-text-v2"
    COHERE_V3 = "cohere.embed"
    COHERE_V4 = "cohere.embed-v4"


def family_of(model: str) -> Family | None:
    """The embedding family of a model id, an inference profile id or a foundation model ARN;
    None when it names no model we embed with."""
    name = model.rsplit("/", 1)[-1]
    for candidate in (name, name.partition(".")[2]):  # as is, or without `us.` / `eu.` / …
        for family in (Family.TITAN_V2, Family.COHERE_V4, Family.TITAN_V1, Family.COHERE_V3):
            if candidate.startswith(family.value):
                return family
    return None


@dataclass(frozen=True, slots=True)
class EmbedPlan:
    """The InvokeModel bodies one embeddings request takes, in the order of its inputs, and
    the one embedding type they ask for (Cohere's `embedding_types`, Titan V2's
    `embeddingTypes`)."""

    family: Family
    bodies: list[JsonObject]
    kind: str = "float"


def plan(model: str, params: embeddings_pb2.EmbeddingParams) -> EmbedPlan:
    """The calls that embed `params` with `model`, or UNSUPPORTED_INPUT when it cannot."""
    family = family_of(model)
    if family is None:
        raise unsupported(
            f"bedrock embeds with Amazon Titan Embeddings (amazon.titan-embed-…) and Cohere Embed "
            f"(cohere.embed-…) models only, not {model}",
            "model",
        )
    texts = embedding_texts(params)
    dimensions = params.dimensions if params.HasField("dimensions") else None
    own = embedding_passthrough(params)
    # The caller's own fields go as sent (over the defaults), but not over the inputs the
    # router cut into calls: a caller's `texts` made the answer one vector for many inputs.
    if family in (Family.TITAN_V1, Family.TITAN_V2):
        base = {**_titan_fields(family, dimensions), **own}
        bodies = [{**base, "inputText": text} for text in texts]
        if family is Family.TITAN_V1:  # takes no `embeddingTypes` (Bedrock's 400 says so)
            return EmbedPlan(family, bodies)
        return EmbedPlan(family, bodies, vector_type(own, "embeddingTypes", _TITAN_TYPES))
    kind = vector_type(own, "embedding_types", COHERE_TYPES)
    base = {**_cohere_fields(family, dimensions, kind), **own}
    bodies = [{**base, "texts": b} for b in batches(texts, COHERE_BATCH)]
    return EmbedPlan(family, bodies, kind)


def _titan_fields(family: Family, dimensions: int | None) -> JsonObject:
    """V2's vectors are asked for normalized (its default, said: OpenAI's are unit length)."""
    if family is Family.TITAN_V1:
        if dimensions is None:
            return {}
        raise unsupported("this Amazon Titan embeddings model takes no dimensions", "dimensions")
    if dimensions is None:
        return {"normalize": True}
    if dimensions not in _TITAN_V2_DIMENSIONS:
        raise unsupported(
            f"Amazon Titan Text Embeddings V2 gives 256, 512 or 1024 dimensions, not {dimensions}",
            "dimensions",
        )
    return {"dimensions": dimensions, "normalize": True}


def _cohere_fields(family: Family, dimensions: int | None, kind: str) -> JsonObject:
    fields: JsonObject = {"input_type": "search_document", "embedding_types": [kind]}
    if dimensions is None:
        return fields
    if family is Family.COHERE_V4 and dimensions in _COHERE_V4_DIMENSIONS:
        return {**fields, "output_dimension": dimensions}
    if family is Family.COHERE_V3 and dimensions == _COHERE_V3_DIMENSIONS:
        return fields  # its only size: nothing to ask for
    sizes = "256, 512, 1024 or 1536" if family is Family.COHERE_V4 else "1024"
    raise unsupported(
        f"this Cohere Embed model gives {sizes} dimensions, not {dimensions}", "dimensions"
    )


def vectors_of(plan: EmbedPlan, answer: Mapping[str, Any]) -> list[list[float]]:
    """The vectors of one InvokeModel answer (one for Titan, one per text for Cohere)."""
    if plan.family in (Family.TITAN_V1, Family.TITAN_V2):
        # `embedding` is the float vector, absent from an answer that was not asked for one
        vector = (
            answer["embedding"] if plan.kind == "float" else answer["embeddingsByType"][plan.kind]
        )
        return [[float(v) for v in vector]]
    embeddings = answer["embeddings"]
    if isinstance(embeddings, dict):  # embeddings_by_type
        embeddings = embeddings[plan.kind]
    return [[float(v) for v in vector] for vector in embeddings]


def tokens_of(family: Family, answer: Mapping[str, Any], headers: Mapping[str, str]) -> int:
    """Input tokens of one answer: Titan's body counts them; otherwise Bedrock's header, if any."""
    if family in (Family.TITAN_V1, Family.TITAN_V2) and "inputTextTokenCount" in answer:
        return int(answer["inputTextTokenCount"])
    counted = headers.get(TOKEN_COUNT_HEADER, "")
    return int(counted) if counted.isdigit() else 0


def check_counts(bodies: Sequence[JsonObject], vectors: Sequence[Sequence[float]]) -> None:
    """An answer with another number of vectors than texts asked for is malformed."""
    asked = sum(len(body["texts"]) if "texts" in body else 1 for body in bodies)
    if asked != len(vectors):
        raise ValueError(f"{len(vectors)} embeddings for {asked} inputs")
