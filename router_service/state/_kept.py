"""The protobuf messages the router keeps as documents in the state store, read back."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import DecodeError, Message

__all__ = ["kept_message"]

M = TypeVar("M", bound=Message)


def kept_message(message_type: type[M], data: bytes | None) -> M | None:
    """The document as `message_type`; None when absent or not ours (a foreign writer under the
    store's prefix, or a document it cannot decode): as good as absent, never an error."""
    if data is None:
        return None
    try:
        return message_type.FromString(data)
    except DecodeError:
        return None
