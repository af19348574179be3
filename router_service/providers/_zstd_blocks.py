"""Where each block of a zstd stream ends (RFC 8878's frame format read as far as its headers),
so that the bounded decoder (`_bounded_decode`) feeds zstandard a block at a time: its
decompressobj gives a call's whole output, and a block decodes to at most 128 KiB however few
bytes it is (an RLE block is 4), so a call fed no more than to the end of the next block holds
at most one block's output, whatever the stream. Only the headers are read (a frame's, a
block's, a skippable frame's): zstandard checks all else. A stream this does not read as zstd
(another magic number, as a legacy frame's is; a block of the reserved type) is refused with a
`ValueError` before zstandard is given it, so the two never disagree on where a block ends."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["BLOCK_MAX", "ZstdBlocks"]

BLOCK_MAX = 128 * 1024  # the most one block decodes to (Block_Maximum_Size)
_MAGIC = b"\x28\xb5\x2f\xfd"  # a frame's, little-endian 0xFD2FB528
_SKIPPABLE = b"\x2a\x4d\x18"  # a skippable frame's last 3 bytes (0x184D2A5?)
_RLE, _RESERVED = 1, 3  # block types (raw 0, compressed 2: Block_Size bytes of content)
_FRAME, _BLOCK, _CHECKSUM = range(3)  # what the next header is


class ZstdBlocks:
    """A zstd stream's structure followed as it arrives: `ends` of each received chunk."""

    __slots__ = ("_checksum", "_content", "_head", "_in_block", "_next")

    def __init__(self) -> None:
        self._next = _FRAME
        self._head = b""  # the next header's bytes received so far
        self._content = 0  # bytes still to come of a block's content or a skippable frame's
        self._in_block = False  # whether `_content` is a block's (its end is a block's end)
        self._checksum = False  # whether the frame ends with a 4-byte checksum

    def ends(self, data: bytes) -> Iterator[int]:
        """The offsets in `data` just past each block that ends in it (an empty block's not:
        it decodes to nothing). Raises ValueError at what is no zstd."""
        at = 0
        while at < len(data):
            if self._content:
                taken = min(self._content, len(data) - at)
                at, self._content = at + taken, self._content - taken
                if not self._content and self._in_block:
                    yield at
                continue
            size = _header_size(self._next, self._head)
            while len(self._head) < size and at < len(data):
                wanted = size - len(self._head)
                self._head, at = self._head + data[at : at + wanted], at + wanted
                size = _header_size(self._next, self._head)  # a frame's grows as it is read
            if len(self._head) == size:
                self._read_header()

    def _read_header(self) -> None:
        head, self._head, self._in_block = self._head, b"", False
        if self._next == _BLOCK:
            value = int.from_bytes(head, "little")
            kind, size = value >> 1 & 3, value >> 3
            if kind == _RESERVED:
                raise ValueError("a block of the reserved type")
            if size > BLOCK_MAX:  # (an RLE block's size is what it decodes to)
                raise ValueError(f"a block of {size} bytes, past the most of {BLOCK_MAX}")
            self._content, self._in_block = (1 if kind == _RLE else size), True
            self._next = _BLOCK if not value & 1 else _CHECKSUM if self._checksum else _FRAME
        elif self._next == _CHECKSUM:
            self._next = _FRAME
        elif _skippable(head):
            self._content = int.from_bytes(head[4:8], "little")
        else:
            self._checksum, self._next = bool(head[4] & 0b100), _BLOCK


def _header_size(kind: int, head: bytes) -> int:
    """The size of the header of `kind` that starts with `head` (as far as `head` tells it)."""
    if kind == _BLOCK:
        return 3
    if kind == _CHECKSUM:
        return 4
    if len(head) < 4:
        return 4
    if _skippable(head):
        return 8  # its magic number, then its data's size
    if head[:4] != _MAGIC:
        raise ValueError(f"a frame of unknown magic number {head[:4].hex()}")
    if len(head) < 5:
        return 5
    descriptor = head[4]
    single_segment = descriptor >> 5 & 1
    content_size = (0, 2, 4, 8)[descriptor >> 6] or single_segment
    return 5 + (not single_segment) + (0, 1, 2, 4)[descriptor & 3] + content_size


def _skippable(head: bytes) -> bool:
    return head[1:4] == _SKIPPABLE and head[0] & 0xF0 == 0x50
