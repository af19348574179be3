"""Logs: growing documents of lines in the state store, appended by one writer and followed by
readers on any replica, woken by flight landings on the log's name (no polling).

The writer appends each batch of lines in one atomic step (`StateStore.append_document`) and
then lands a flight on the same name (`land_flight`: on Redis a PUBLISH every replica's
subscriber hears; in memory the watch is woken at once). A reader (`DocumentLines`) reads only
what is new each time, from where it stopped (`StateStore.read_document`). Bounded: past
`max_lines` lines or `max_bytes` bytes the writer appends one `DROPPED` line and no more; what
a reader does on it is its own (the log's users: background responses' events, the response
cache's shared streams).
"""

from __future__ import annotations

from router_service.state._base import AppendResult, Landing, StateStore

__all__ = ["DROPPED", "READ_BYTES", "DocumentLines", "LogWriter"]

DROPPED = b"-"  # the line that says the lines after it were not kept
# A reader reads at most this much at once (then hands the lines over, and reads on): what a
# read from the first line of a long log holds at a time.
READ_BYTES = 256 * 1024


class LogWriter:
    """Appends lines to one log, within its bounds, waking its readers."""

    def __init__(self, store: StateStore, name: str, *, max_lines: int, max_bytes: int) -> None:
        self._store = store
        self.name = name
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self._count = 0
        self.written = 0  # bytes appended
        self.stopped = False  # the bound was passed, or the document is gone

    async def append(self, data: bytes, lines: int) -> None:
        """Append `data` (`lines` complete lines) and wake the readers (nothing once stopped)."""
        if self.stopped or not lines:
            return
        self._count += lines
        done = AppendResult.TOO_LARGE
        if self._count <= self._max_lines:
            done = await self._store.append_document(self.name, data, max_bytes=self._max_bytes)
        if done is AppendResult.APPENDED:
            self.written += len(data)
        else:
            self.stopped = True
            if done is AppendResult.TOO_LARGE:  # room is left for this line past the bound
                mark = DROPPED + b"\n"
                limit = self._max_bytes + len(mark)
                await self._store.append_document(self.name, mark, max_bytes=limit)
        await self._store.land_flight(self.name, "", Landing.KEPT)


class DocumentLines:
    """The complete lines of a growing document, read on from where the last read stopped
    (never the whole document again on each wake: a long log made that quadratic), at most
    READ_BYTES at a time."""

    def __init__(self, store: StateStore, name: str) -> None:
        self._store = store
        self._name = name
        self._offset = 0  # bytes read so far
        # the start of a line whose end was not read yet, in the pieces it was read in: joined
        # once, when its end comes (re-joined at every read, a long line's was quadratic)
        self._partial: list[bytes] = []
        self.behind = False  # the last read stopped before the document's end

    async def more(self) -> list[bytes] | None:
        """The lines completed since the last call; None when the document is gone."""
        part = await self._store.read_document(self._name, self._offset, READ_BYTES)
        if part is None:
            return None
        self._offset += len(part.data)
        self.behind = self._offset < part.size
        if b"\n" not in part.data:  # no line ends in it: kept as it came (no split's copy)
            if part.data:
                self._partial.append(part.data)
            return []
        *complete, rest = part.data.split(b"\n")
        if self._partial:
            complete[0] = b"".join((*self._partial, complete[0]))
            self._partial.clear()
        if rest:
            self._partial.append(rest)
        return complete

    async def dropped(self) -> bool:
        """Whether the document (as it is now) ends with the mark that lines were dropped."""
        mark = DROPPED + b"\n"
        whole = await self._store.read_document(self._name, 0, 0)
        if whole is None or whole.size < len(mark):
            return False
        tail = await self._store.read_document(self._name, whole.size - len(mark), len(mark))
        return tail is not None and tail.data == mark
