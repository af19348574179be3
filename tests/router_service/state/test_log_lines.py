"""`DocumentLines`: a growing document's lines read on from where the last read stopped, on
each store kind; a line longer than a read is held in the pieces it came in and joined once,
not copied again at every read (which made one long line quadratic)."""

from __future__ import annotations

import tracemalloc

from router_service.clock import ManualClock
from router_service.state import READ_BYTES, DocumentLines
from tests.router_service.state.stores import MakeStore

_READS = 64  # the long line's length in reads (16 MiB)


async def _allocated_by_each_read(lines: DocumentLines) -> tuple[list[bytes], list[int]]:
    """`lines.more()` until it gives lines: those, and the most each call allocated at once
    (`tracemalloc`'s peak over what was allocated before the call)."""
    peaks: list[int] = []
    got: list[bytes] | None = []
    tracemalloc.start()
    try:
        while not got:
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            got = await lines.more()
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()
    assert got is not None
    return got, peaks


async def test_a_long_line_is_not_copied_again_at_each_read(make_store: MakeStore) -> None:
    store = make_store(ManualClock())
    line = bytes(range(256)).replace(b"\n", b"") * (_READS * READ_BYTES // 255)
    await store.put_document("log:long", b"a\nb\n" + line + b"\nc", 600)
    lines = DocumentLines(store, "log:long")
    assert await lines.more() == [b"a", b"b"]  # its first read: the lines before, then its start
    got, peaks = await _allocated_by_each_read(lines)
    assert got == [line]
    assert len(peaks) >= _READS - 1
    # A read that ends no line holds what it read (a few times over on Redis, its reply parsed),
    # not the line so far copied again: re-joined, the 63rd read would allocate ~16 MiB.
    quarter = len(line) // 4
    assert max(peaks[:-1]) < quarter, [peak >> 10 for peak in peaks]
    await store.append_document("log:long", b"\n", max_bytes=1 << 30)
    assert await lines.more() == [b"c"]  # the piece after it, a line of its own once ended


async def test_a_line_split_across_reads_comes_whole_once_ended(make_store: MakeStore) -> None:
    store = make_store(ManualClock())
    await store.put_document("log:a", b"", 600)
    lines = DocumentLines(store, "log:a")
    for part in (b"he", b"", b"l", b"lo\nwor", b"ld", b"\n\n", b"!"):
        await store.append_document("log:a", part, max_bytes=1 << 20)
        assert await lines.more() == {b"lo\nwor": [b"hello"], b"\n\n": [b"world", b""]}.get(
            part, []
        )
    assert await lines.more() == []
    assert not lines.behind
