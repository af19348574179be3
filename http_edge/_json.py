"""JSON responses rendered with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["JSONBytesResponse", "dumps"]


def dumps(obj: Any) -> bytes:
    """Compact JSON, as the OpenAI API writes it."""
    return orjson.dumps(obj)


class JSONBytesResponse(Response):
    """A JSON response rendered by orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
