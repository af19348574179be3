"""A streamed tool call put together from OpenAI's pieces (`delta.tool_calls[]`: the id and
name in the first, the arguments in fragments), for the entrances whose APIs send a call whole
(Gemini's, Ollama's)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StreamedCall"]


@dataclass
class StreamedCall:
    """A tool call as its pieces arrive; `signature`: a Gemini thought signature, from
    whichever piece carried one."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    signature: str = ""

    def add(self, piece: Mapping[str, Any], signature: str = "") -> None:
        function = piece.get("function") or {}
        self.id = self.id or str(piece.get("id") or "")
        self.name = self.name or str(function.get("name") or "")
        if isinstance(function.get("arguments"), str):
            self.arguments.append(function["arguments"])
        self.signature = self.signature or signature
