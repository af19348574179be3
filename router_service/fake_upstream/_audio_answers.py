"""OpenAI's spoken chat answers (`modalities: ["audio"]`): the message's `audio` object (its
`id`, base64 `data`, `expires_at` and `transcript`) instead of `content`; streamed, the
transcript's pieces each in a delta's `audio`, the data of each after it, then the expiry."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._responses import ChatAnswer

__all__ = ["audio_deltas", "audio_message", "speaks"]


def speaks(body: dict[str, Any]) -> bool:
    """Whether the request asks for a spoken answer."""
    modalities = body.get("modalities")
    return isinstance(modalities, list) and "audio" in modalities


def _data(text: str) -> str:
    return base64.b64encode(text.encode()).decode()  # "audio" saying the text: its bytes


def audio_message(answer: ChatAnswer) -> dict[str, Any]:
    """The keys of a spoken answer's message ({} for any other answer, a tool call's too)."""
    if not answer.audio or answer.tool_name is not None:
        return {}
    text, expires = answer.text, answer.created + 3600
    audio = {"id": f"audio_{answer.completion_id}", "data": _data(text), "expires_at": expires}
    return {"content": None, "audio": {**audio, "transcript": text}}


def audio_deltas(completion_id: str, created: int, pieces: list[str]) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = [{"audio": {"id": f"audio_{completion_id}", "transcript": ""}}]
    for piece in pieces:
        deltas += [{"audio": {"transcript": piece}}, {"audio": {"data": _data(piece)}}]
    return [*deltas, {"audio": {"expires_at": created + 3600}}]
