"""The router's models (the caller's, as `/v1/models` lists them) in Ollama's words:
`/api/tags` entries and `/api/show` details.

The router says neither a model's size, nor its family, nor what it can do: `size` is 0, the
`details` empty (and the architecture in `model_info`), the `digest` a stable hash of the name
(Ollama's is the weights'), and a shown model's capabilities are what every deployment takes
through this gateway (`completion`, `tools`), or, for one the router says serves embeddings
(its group's `embeddings: true`), `embedding` alone, as Ollama says of its embedding models.
"""

from __future__ import annotations

import hashlib
from typing import Any

from clients.codec.ollama._response import created_at
from clients.switchboard.v1.router_service_pb2 import ModelInfo

__all__ = ["model_details", "model_to_ollama", "show_model"]

JsonObject = dict[str, Any]


def model_details() -> JsonObject:
    """A model's `details`: nothing the router knows."""
    return {
        "parent_model": "",
        "format": "",
        "family": "",
        "families": None,
        "parameter_size": "",
        "quantization_level": "",
    }


def _digest(model: ModelInfo) -> str:
    return hashlib.sha256(model.id.encode()).hexdigest()


def model_to_ollama(model: ModelInfo) -> JsonObject:
    """A model as an `/api/tags` entry."""
    return {
        "name": model.id,
        "model": model.id,
        "modified_at": created_at(float(model.created)),
        "size": 0,
        "digest": _digest(model),
        "details": model_details(),
    }


def show_model(model: ModelInfo) -> JsonObject:
    """A model as `/api/show` answers it: no Modelfile, template or parameters of its own."""
    return {
        "modelfile": "",
        "parameters": "",
        "template": "",
        "details": model_details(),
        # `general.architecture`: Ollama's CLI (`ollama show`) takes it as a string whenever
        # there is a `model_info`; the router knows none.
        "model_info": {"general.architecture": "", "general.basename": model.id},
        "capabilities": ["embedding"] if model.embeddings else ["completion", "tools"],
        "modified_at": created_at(float(model.created)),
    }
