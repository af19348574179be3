"""Where each block of a zstd stream ends (RFC 8878's frame format read as far as its headers),
so that the bounded decoder (`_bounded_decode`) feeds zstandard a block at a time: its
decompressobj gives a call's whole output, and a block decodes to at most 128 KiB however few
bytes it is (an RLE block is 4), so a call fed no further than before the block that could take
its output past 128 KiB holds at most that, whatever the stream (a compressed block counted as
128 KiB: its header tells its size, not its output's). Only the headers are read (a frame's, a
block's, a skippable frame's): zstandard checks all else. A stream this does not read as zstd
(another magic number, as a legacy frame's is; a block of the reserved type) is refused with a
`ValueError` before zstandard is given it, so the two never disagree on where a block ends."""

from __future__ import annotations

from collections.abc import Generator, Iterator

__all__ = ["BLOCK_MAX", "ZstdBlocks"]

BLOCK_MAX = 128 * 1024  # the most one block decodes to (Block_Maximum_Size)
_MAGIC = b"\x28\xb5\x2f\xfd"  # a frame's, little-endian 0xFD2FB528
_SKIPPABLE = b"\x2a\x4d\x18"  # a skippable frame's last 3 bytes (0x184D2A5?)
_RLE, _COMPRESSED, _RESERVED = 1, 2, 3  # block types (raw 0; compressed: Block_Size bytes)
_FRAME, _BLOCK, _CHECKSUM = range(3)  # what the next header is


class ZstdBlocks:
    """A zstd stream's structure followed as it arrives: `ends` of each received chunk."""

    __slots__ = ("_bound", "_checksum", "_content", "_head", "_next", "_owed")

    def __init__(self) -> None:
        self._next = _FRAME
        self._head = b""  # the next header's bytes received so far
        self._content = 0  # bytes still to come of a block's content or a skippable frame's
        self._bound = 0  # the most the block of `_content` decodes to (0: no block's)
        self._owed = 0  # the most the blocks begun since the last call's feed decode to
        self._checksum = False  # whether the frame ends with a 4-byte checksum

    def ends(self, data: bytes) -> Iterator[int]:
        """The offsets in `data` to feed zstandard to, a call each (then one to its end): each
        before a block whose output, with that of the blocks since the last offset, could pass
        BLOCK_MAX. A run of tiny blocks (an RLE one is 4 bytes, an empty one 3) is one call, not
        one each, its headers read inline. Raises ValueError at what is no zstd."""
        at, end = 0, len(data)
        while at < end:
            if self._content:
                taken = min(self._content, end - at)
                at, self._content = at + taken, self._content - taken
                continue
            if self._next == _BLOCK and not self._head and at + 3 <= end:  # the common case
                at = yield from self._blocks(data, at)
                continue
            begun = at
            size = _header_size(self._next, self._head)
            while len(self._head) < size and at < end:
                wanted = size - len(self._head)
                self._head, at = self._head + data[at : at + wanted], at + wanted
                size = _header_size(self._next, self._head)  # a frame's grows as read
            if len(self._head) < size:
                break
            bound = self._read_header()
            if self._owed + bound > BLOCK_MAX:
                yield begun  # (0 when its header began in the last chunk: fed to there)
                self._owed = 0
            self._owed += bound
        # all of `data` is fed next: owed on is the output of a block not all received
        self._owed = self._bound if self._content else 0

    def _blocks(self, data: bytes, at: int) -> Generator[int, None, int]:
        """`ends` of a run of blocks whose headers are whole in `data` from `at`, read inline
        (a tiny block's cost is its header's): where the run stops in `data`."""
        end, owed = len(data), self._owed
        while True:
            value = int.from_bytes(data[at : at + 3], "little")
            kind, size = value >> 1 & 3, value >> 3
            if kind == _RESERVED or size > BLOCK_MAX:
                self._block(value)  # raises
            bound = BLOCK_MAX if kind == _COMPRESSED else size
            if owed + bound > BLOCK_MAX:
                yield at
                owed = 0
            owed, past = owed + bound, at + 3 + (1 if kind == _RLE else size)
            if value & 1 or past + 3 > end:  # the frame's last, or the next header not whole
                break
            at = past
        self._owed = owed
        self._block(value)
        taken = min(self._content, end - at - 3)
        self._content -= taken
        return at + 3 + taken

    def _block(self, value: int) -> int:
        """A block's header (`value`, its 3 bytes) read: the most the block decodes to."""
        kind, size = value >> 1 & 3, value >> 3
        if kind == _RESERVED:
            raise ValueError("a block of the reserved type")
        if size > BLOCK_MAX:  # (an RLE block's size is what it decodes to)
            raise ValueError(f"a block of {size} bytes, past the most of {BLOCK_MAX}")
        self._content = 1 if kind == _RLE else size
        self._next = _BLOCK if not value & 1 else _CHECKSUM if self._checksum else _FRAME
        # a compressed block's header tells what it takes, not what it decodes to
        self._bound = BLOCK_MAX if kind == _COMPRESSED else size
        return self._bound

    def _read_header(self) -> int:
        """The header in `_head` read: the most its block decodes to (0: no block's)."""
        head, self._head, self._bound = self._head, b"", 0
        if self._next == _BLOCK:
            return self._block(int.from_bytes(head, "little"))
        if self._next == _CHECKSUM:
            self._next = _FRAME
        elif _skippable(head):
            self._content = int.from_bytes(head[4:8], "little")
        else:
            self._checksum, self._next = bool(head[4] & 0b100), _BLOCK
        return 0


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
