"""Which conversation a request belongs to."""

from __future__ import annotations

import hashlib

from clients.switchboard.v1 import chat_pb2


def session_id_for(explicit: str, params: chat_pb2.ChatParams) -> str:
    """The caller's name for the conversation (`x-session-id` header / gRPC field), else the
    OpenAI `user`, else a stable hash of the conversation's opening: its first system (or
    developer) message and first user message, which every later turn repeats unchanged."""
    if explicit:
        return explicit
    if params.HasField("user") and params.user:
        return f"user:{params.user}"
    digest = hashlib.sha256()
    opening = [
        next((m for m in params.messages if m.role in _SYSTEM_ROLES), None),
        next((m for m in params.messages if m.role == chat_pb2.ROLE_USER), None),
    ]
    for message in opening:
        digest.update(b"\x00" if message is None else _content_bytes(message))
        digest.update(b"\x01")
    return "h:" + digest.hexdigest()[:24]


_SYSTEM_ROLES = (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER)


def _content_bytes(message: chat_pb2.ChatMessage) -> bytes:
    which = message.WhichOneof("content")
    if which == "text":
        return message.text.encode()
    if which == "parts":
        return message.parts.SerializeToString(deterministic=True)
    return b""
