"""StreamLog's follower reads what is new, not the whole events document again on each wake (a
long stream made that quadratic: 20,000 events of a few MiB, each wake reading them all), and
a long backlog a part at a time."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing

from router_service.clock import ManualClock
from router_service.config import ResponsesConfig
from router_service.responses import StreamLog
from router_service.responses._stream_log import READ_BYTES
from router_service.state import DocumentPart, MemoryStateStore


class ReadCounting(MemoryStateStore):
    """Counts the document bytes handed to readers, and the largest single read."""

    def __init__(self) -> None:
        super().__init__(ManualClock())
        self.bytes_read = 0
        self.largest_read = 0

    def _count(self, size: int) -> None:
        self.bytes_read += size
        self.largest_read = max(self.largest_read, size)

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        found = await super().get_documents(names)
        for data in found:
            self._count(len(data or b""))
        return found

    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        part = await super().read_document(name, start, max_bytes)
        self._count(0 if part is None else len(part.data))
        return part


async def _never_gone() -> bool:
    return False


def _delta(n: int, pad: int = 100) -> dict[str, object]:
    return {"type": "response.output_text.delta", "sequence_number": n, "delta": "x" * pad}


async def test_a_follower_reads_each_event_once_as_they_come() -> None:
    store = ReadCounting()
    log = StreamLog(store, ResponsesConfig())
    writer = await log.open("a", "resp_1")
    follow = log.follow("a", "resp_1", -1, _never_gone)
    async with aclosing(follow):
        for n in range(300):
            await writer.add([_delta(n)])
            assert (await anext(follow))["sequence_number"] == n
        last = {"type": "response.completed", "sequence_number": 300}
        await writer.add([last])
        assert await anext(follow) == last
        assert [e async for e in follow] == []  # it ends with the end event
    (document,) = await store.get_documents(["bg-events:" + _stored_name(store)])
    assert document is not None
    # Each event read once (re-reading the whole document on each wake read ~150 times this).
    assert store.bytes_read <= 2 * len(document)  # its reads, and the one above
    store.bytes_read = 0
    assert await log.kept("a", "resp_1")  # whether a resume may follow: no event read for it
    assert store.bytes_read == 0


async def test_a_resume_reads_a_long_backlog_a_part_at_a_time() -> None:
    store = ReadCounting()
    log = StreamLog(store, ResponsesConfig(max_stream_bytes=16 * READ_BYTES))
    writer = await log.open("a", "resp_1")
    events = [_delta(n, pad=1000) for n in range(2000)]  # ~2 MiB, events split across reads
    events.append({"type": "response.completed", "sequence_number": 2000})
    await writer.add(events)
    store.bytes_read = store.largest_read = 0
    follow = log.follow("a", "resp_1", 1500, _never_gone)
    async with aclosing(follow):
        resumed = [event async for event in follow]
    assert resumed == events[1501:]
    assert store.largest_read <= READ_BYTES


def _stored_name(store: MemoryStateStore) -> str:
    (name,) = [n for n in store.documents._entries if n.startswith("bg-events:")]
    return name.removeprefix("bg-events:")
