"""zlib's window bits for a compressed HTTP body (`Content-Encoding: gzip` or `deflate`): one
reading for the edge's request bodies (http_edge/_body.py) and the router's upstream answers
(providers/_bounded_decode.py), which each bound and step through in their own way."""

from __future__ import annotations

import zlib

__all__ = ["EITHER_HEADER", "zlib_window"]

# Reads a gzip or a zlib header, whichever the stream has (HTTP's `deflate` is zlib's format).
EITHER_HEADER = 32 + zlib.MAX_WBITS


def zlib_window(name: str, head: bytes) -> int:
    """The window bits for a body's first stream, from its first bytes: HTTP's `deflate` is
    zlib's format, but many senders use the bare deflate stream (.NET's `DeflateStream`, Node's
    `deflateRaw`, servers httpx reads either way from), whose first bytes are neither a gzip nor
    a zlib header (RFC 1950's check)."""
    head = head[:2]
    if name != "deflate" or len(head) < 2 or head == b"\x1f\x8b":
        return EITHER_HEADER
    zlib_header = head[0] & 0x0F == 8 and int.from_bytes(head) % 31 == 0
    return EITHER_HEADER if zlib_header else -zlib.MAX_WBITS
