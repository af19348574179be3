"""``ListModelsResponse`` → OpenAI's ``GET /v1/models`` body."""

from __future__ import annotations

from typing import Any

from clients.switchboard.v1 import router_service_pb2

_KIND_PREFIX = "MODEL_KIND_"


def model_list_to_openai(resp: router_service_pb2.ListModelsResponse) -> dict[str, Any]:
    """OpenAI's model list, plus a ``switchboard`` object per model (its kind and members).

    OpenAI SDKs ignore unknown keys, so the extra object is safe; ``kind`` is ``deployment``,
    ``group``, ``pool`` (or ``unspecified``).
    """
    return {
        "object": "list",
        "data": [
            {
                "id": model.id,
                "object": "model",
                "created": model.created,
                "owned_by": model.owned_by,
                "switchboard": {"kind": _kind_name(model.kind), "members": list(model.members)},
            }
            for model in resp.models
        ],
    }


def _kind_name(kind: router_service_pb2.ModelKind.ValueType) -> str:
    try:
        name = router_service_pb2.ModelKind.Name(kind)
    except ValueError:  # a newer router's kind this client does not know yet
        return "unspecified"
    return name.removeprefix(_KIND_PREFIX).lower()
