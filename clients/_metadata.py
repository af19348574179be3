"""A call's metadata as gRPC sends it: the caller's pairs checked, keys lower-cased, and the
client's key as `authorization`."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from clients._arguments import printable

__all__ = ["Metadata", "call_metadata"]

# Pairs, or a dict of them (iterated as its keys, a two-letter key was cut into a pair).
Metadata = Sequence[tuple[str, str | bytes]] | Mapping[str, str | bytes]  # bytes: `-bin` keys

# A metadata key gRPC sends: lower-case letters, digits, `-`, `_`, `.`. grpc-go and grpc-java
# lower-case the keys they are given; Python's grpc failed the call (the async client's unary
# calls with its internal ExecuteBatchError, the others INTERNAL "Invalid metadata").
_KEY_CHARS = frozenset(string.ascii_lowercase + string.digits + "-_.")


def call_metadata(
    api_key: str | None, metadata: Metadata | None
) -> tuple[tuple[str, str | bytes], ...]:
    """The caller's metadata, keys lower-cased as gRPC sends them, plus ``authorization: Bearer
    <api_key>`` (credentials the caller passes win: the edge forwards each HTTP caller's own
    key); ValueError, by its key (never its value: a credential), for a pair gRPC cannot send."""
    if not metadata:
        merged: tuple[tuple[str, Any], ...] = ()
    elif type(metadata) is tuple or type(metadata) is list:
        merged = tuple(metadata)
    else:  # a dict's pairs, not its keys
        merged = tuple(metadata.items() if isinstance(metadata, Mapping) else metadata)
    for key, value in merged:  # a call's usual pairs: keys sent before, text values
        if key not in _SENT_KEYS or type(value) is not str or not printable(value):
            merged = tuple(_sendable(key, value) for key, value in merged)
            break
    if api_key is not None and not any(key == "authorization" for key, _ in merged):
        merged += (("authorization", f"Bearer {api_key}"),)
    return merged


# Keys found sendable as they are, which `call_metadata` does not check again: a key's
# check took most of the ~3 µs the edge's four pairs cost each call. A client's keys are few;
# a caller's odd ones past the bound are checked each time.
_SENT_KEYS: set[str] = set()
_SENT_KEYS_MAX = 64


def _sendable(key: str, value: Any) -> tuple[str, Any]:
    name = key.lower()
    if not name or not _KEY_CHARS.issuperset(name):
        raise ValueError(
            f"metadata key {key!r} is not one gRPC can send: lower-case letters, digits, "
            "'-', '_' and '.'"
        )
    # A `-bin` key's value is bytes, any, checked each call (the key is never kept in
    # `_SENT_KEYS`, whose str values pass unchecked); another key's is printable ASCII, given
    # as a str or as bytes (grpc takes both). A str under a `-bin` key is refused, not
    # encoded: grpc's own TypeError failed the call, and which bytes it means (UTF-8 text?
    # base64 already encoded?) is the caller's to say.
    if name.endswith("-bin"):
        if not isinstance(value, bytes):
            raise ValueError(
                f"the value of metadata key {name!r} must be bytes (gRPC sends a '-bin' key's "
                f"bytes base64-encoded itself), not {type(value).__name__}"
            )
        return name, value
    if name == key and len(_SENT_KEYS) < _SENT_KEYS_MAX:
        _SENT_KEYS.add(key)
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if isinstance(text, str) and not printable(text):
        raise ValueError(
            f"the value of metadata key {name!r} is not printable ASCII, which gRPC sends "
            "alone (a line break read with it, or a character pasted with it?)"
        )
    return name, value
