"""The message size limits a ``LocalChannel`` call keeps, said in grpc's words: a request over
its caller's `grpc.max_send_message_length` or the router's `grpc.max_receive_message_length`,
an answer over its caller's `grpc.max_receive_message_length`."""

from __future__ import annotations

from typing import Any

__all__ = ["answer_refused", "request_refused", "send_refused"]


def send_refused(size: int, limit: float) -> str | None:
    """The details of a request (or a message written to a call) over its caller's own limit,
    refused before any server sees it (None: within it)."""
    if size <= limit:
        return None
    return f"CLIENT: Sent message larger than max ({size} vs. {int(limit)})"


def request_refused(size: int, limit: int) -> str | None:
    """The details of a request over the server's limit (None: within it)."""
    if size <= limit:
        return None
    return f"SERVER: Received message larger than max ({size} vs. {limit})"


def answer_refused(answer: Any, limit: float) -> str | None:
    """The details of an answer (its bytes) over its caller's limit (None: within it)."""
    size = len(answer) if isinstance(answer, bytes) else 0
    if size <= limit:
        return None
    return f"Stream removed (CLIENT: Received message larger than max ({size} vs. {int(limit)}))"
