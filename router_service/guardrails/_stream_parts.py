"""What a screened stream's delta says, and its refusal set (StreamScreen's helpers)."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2

__all__ = ["says_something", "set_refusal"]


def set_refusal(delta: chat_pb2.ChatMessage, text: str) -> None:
    if text:
        delta.refusal = text
    else:
        delta.ClearField("refusal")


def says_something(choice: chat_pb2.ChunkChoice) -> bool:
    delta = choice.delta
    return bool(
        choice.finish_reason
        or choice.finish_reason_raw
        or choice.extra_json
        or delta.role
        or delta.text
        or delta.HasField("parts")
        or delta.tool_calls
        or delta.HasField("refusal")
        or delta.HasField("function_call")
        or delta.extra_json
    )
