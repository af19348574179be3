"""The router's model list in Anthropic's Models API shape, for its callers (its SDKs'
`client.models.list()` / `retrieve()`, Claude Code's gateway model discovery, which reads
`GET /v1/models?limit=1000` this way and no other).

Followed: https://docs.anthropic.com/en/api/models-list: `limit` (1 to 1000, default 20),
`after_id` / `before_id` (the page just after or before that model); the answer's `data`,
`has_more`, `first_id` and `last_id`. A model is `{"type": "model", "id", "display_name",
"created_at"}` (RFC 3339). The router's list is not paged: each page is cut from the whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clients.errors import InvalidRequestError
from clients.switchboard.v1.router_service_pb2 import ModelInfo

__all__ = ["ModelsAsk", "model_to_anthropic", "models_ask"]

JsonObject = dict[str, Any]

DEFAULT_LIMIT, MAX_LIMIT = 20, 1000  # Anthropic's


def model_to_anthropic(model: ModelInfo) -> JsonObject:
    """One model as Anthropic's ModelInfo: its id is its display name too."""
    created = datetime.fromtimestamp(model.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": model.id, "display_name": model.id, "created_at": created}


@dataclass(frozen=True, slots=True)
class ModelsAsk:
    """What a models list call asks, read before the list is."""

    limit: int
    after_id: str = ""
    before_id: str = ""

    def page(self, models: Sequence[ModelInfo]) -> JsonObject:
        """The page of `models` asked for; InvalidRequestError for an id not among them."""
        ids = [model.id for model in models]
        if self.before_id:
            end = _position(ids, self.before_id, "before_id")
            start = max(0, end - self.limit)
            more = start > 0
        else:
            start = _position(ids, self.after_id, "after_id") + 1 if self.after_id else 0
            end = start + self.limit
            more = end < len(models)
        page = models[start:end]
        return {
            "data": [model_to_anthropic(model) for model in page],
            "has_more": more,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
        }


def models_ask(query: Mapping[str, str]) -> ModelsAsk:
    """`limit`, `after_id` and `before_id` (query parameters, as given) read;
    InvalidRequestError naming the one that is wrong."""
    after, before = query.get("after_id") or "", query.get("before_id") or ""
    if after and before:
        raise InvalidRequestError("after_id: give after_id or before_id, not both", "after_id")
    return ModelsAsk(_limit(query.get("limit")), after, before)


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        message = f"limit: {value!r} is not a limit (a whole number, 1 to {MAX_LIMIT})"
        raise InvalidRequestError(message, "limit")
    return limit


def _position(ids: list[str], model: str, param: str) -> int:
    try:
        return ids.index(model)
    except ValueError:
        raise InvalidRequestError(f"{param}: {model!r} is not a listed model", param) from None
