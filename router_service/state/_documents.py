"""Documents in one process: byte strings with an expiry, within a byte budget.

A document (a stored Responses API response, a conversation) is large next to everything else
the state keeps, written once (a conversation: appended to) and read a few times. The budget
bounds the memory they take whatever the traffic: when a new one (or a longer one) does not fit,
documents are dropped before their expiry, and one larger than the whole budget is not kept.
Expired ones go when read, when the budget is reached, and in a sweep each time the map has
doubled since the last (`_SWEEP_MIN_ENTRIES`).

Whose go first: a name's part before its last `:` is its owner (stored responses are named
`resp:<client>:<id>`, both hashed), and the oldest document of the owner holding the most bytes
(the new one counted as its writer's) goes first. One client writing in a loop then drops its
own documents, not the others' (with the oldest overall first, it emptied the store for all).

A document kept `FOREVER` (the issued client keys' log) stands outside the budget: it never
expires and is never dropped to make room, whatever the others take; its writer bounds it.

An index (`index_name`: a list of other documents, a client's files or batches) goes last: it is
dropped to make room only when nothing else is left to drop. Dropped with the others (a client
that uploads and deletes files in a loop has an index holding more than its files), every
document it listed that was kept whole was listed by nothing, a file retrievable by its id alone.

A tombstone (`tombstone_name`: what says a deleted document stays deleted) goes first: its
worth is only against a writer of the same name on the same process, and many of them (a
client that deletes in a loop) dropped the very document being written to make their room.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

from router_service.clock import Clock
from router_service.state._base import AppendResult, DocumentPart, PutResult

__all__ = [
    "DEFAULT_DOCUMENT_BYTES",
    "KEEP_EXPIRY",
    "MemoryDocuments",
    "index_name",
    "tombstone_name",
]

DEFAULT_DOCUMENT_BYTES = 64 * 1024 * 1024  # `state.memory_document_bytes`
# A rewritten document's `ttl_s` (`StateStore.replace_document`) for one that keeps the expiry
# it has, to the instant (one recomputed from a time kept in whole seconds ended early).
KEEP_EXPIRY = -1.0
# Expired documents are swept once the map holds this many, then twice what the last sweep
# left: amortized O(1) a write, and what has expired takes about as much as what is live. (Only
# at the budget, cached answers under a short TTL held the whole budget, expired, in a busy
# router: 64 MiB by default, reached after hours; the soak saw the router's RSS grow with them.)
_SWEEP_MIN_ENTRIES = 1024
# What the kind of an index (`index_name`: its name's part before the first `:`) ends with.
_INDEX = "-index"
# What the kind of a tombstone (`tombstone_name`) ends with.
_TOMBSTONE = "-deleted"


class MemoryDocuments:
    def __init__(self, clock: Clock, budget_bytes: int = DEFAULT_DOCUMENT_BYTES) -> None:
        self._clock = clock
        self._budget = budget_bytes
        # name -> (data, expiry); a document appended to holds a bytearray (copied when read)
        self._entries: dict[str, tuple[bytes | bytearray, float]] = {}
        # owner -> its names, oldest write first; and the bytes it holds.
        self._owners: dict[str, OrderedDict[str, None]] = {}
        self._owner_bytes: dict[str, int] = {}
        self._bytes = 0
        self._sweep_at = _SWEEP_MIN_ENTRIES  # entries at which expired ones are next swept

    @property
    def size_bytes(self) -> int:
        """Bytes held now (tests prove the budget holds)."""
        return self._bytes

    def put(self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False) -> PutResult:
        """Keep `data` under `name` for `ttl_s` (`StateStore.put_document`)."""
        if only_new and self.get([name])[0] is not None:
            return PutResult.EXISTS  # before anything is dropped to make room
        return self._keep(name, data, self._clock.now() + ttl_s)

    def append(self, name: str, data: bytes, max_bytes: int) -> AppendResult:
        """Append `data` to the live document `name` within `max_bytes`
        (`StateStore.append_document`); it keeps its expiry, and counts as written now."""
        entry = self._live(name)
        if entry is None:
            return AppendResult.MISSING
        held, expiry = entry
        if len(held) + len(data) > max_bytes:
            return AppendResult.TOO_LARGE
        # Grown in place (`held + data` copied the whole document on every append: a streamed
        # background response's events, appended a chunk at a time, took quadratic time).
        self._drop(name)
        grown = held if isinstance(held, bytearray) else bytearray(held)
        grown += data
        if self._keep(name, grown, expiry) is PutResult.TOO_LARGE:
            # Dropped to make room for itself: larger than the whole budget.
            return AppendResult.MISSING
        return AppendResult.APPENDED

    def replace(self, name: str, data: bytes, ttl_s: float, size: int, head: bytes) -> bool:
        """`data` for the live document `name`, for `ttl_s`, if it is still `size` bytes and
        begins with `head` (`StateStore.replace_document`)."""
        entry = self._live(name)
        if entry is None or len(entry[0]) != size or not entry[0].startswith(head):
            return False
        expiry = entry[1] if ttl_s == KEEP_EXPIRY else self._clock.now() + ttl_s
        return self._keep(name, bytes(data), expiry) is PutResult.KEPT

    def _keep(self, name: str, data: bytes | bytearray, expiry: float) -> PutResult:
        self._drop(name)
        if expiry == math.inf:  # FOREVER: outside the budget, never dropped
            self._entries[name] = (data, expiry)
            return PutResult.KEPT
        size = _size(name, data)
        if size > self._budget:
            return PutResult.TOO_LARGE
        if self._bytes + size > self._budget or len(self._entries) >= self._sweep_at:
            self._sweep_expired()
            self._sweep_at = max(_SWEEP_MIN_ENTRIES, 2 * len(self._entries))
        owner = _owner(name)
        while self._entries and self._bytes + size > self._budget:
            self._drop(self._next_to_drop(owner, size))
        self._entries[name] = (data, expiry)
        self._owners.setdefault(owner, OrderedDict())[name] = None
        self._owner_bytes[owner] = self._owner_bytes.get(owner, 0) + size
        self._bytes += size
        return PutResult.KEPT

    def _next_to_drop(self, writer: str, size: int) -> str:
        """The oldest document of the owner that holds the most, `size` more for `writer`; a
        tombstone's before any other's, an index's only when no other owner holds any."""

        def held(owner: str) -> int:
            return self._owner_bytes[owner] + (size if owner == writer else 0)

        kinds = {o: o.partition(":")[0] for o in self._owners}
        tombstones = [o for o, kind in kinds.items() if kind.endswith(_TOMBSTONE)]
        if tombstones:
            return next(iter(self._owners[max(tombstones, key=held)]))
        others = [o for o, kind in kinds.items() if not kind.endswith(_INDEX)]
        return next(iter(self._owners[max(others or self._owners, key=held)]))

    def get(self, names: Sequence[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for name in names:
            entry = self._live(name)
            out.append(None if entry is None else bytes(entry[0]))  # bytes: a copy, not a view
        return out

    def read(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        """A part of `name` (`StateStore.read_document`)."""
        entry = self._live(name)
        if entry is None:
            return None
        # one copy: a bytearray (an appended one) sliced would be a copy, then `bytes` another
        return DocumentPart(bytes(memoryview(entry[0])[start : start + max_bytes]), len(entry[0]))

    def _live(self, name: str) -> tuple[bytes | bytearray, float] | None:
        entry = self._entries.get(name)
        if entry is not None and entry[1] <= self._clock.now():
            self._drop(name)
            return None
        return entry

    def delete(self, name: str) -> bool:
        """Remove `name`; False when it was absent or expired."""
        live = self.get([name])[0] is not None
        self._drop(name)
        return live

    def _drop(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is None or entry[1] == math.inf:  # one kept FOREVER is counted nowhere
            return
        size, owner = _size(name, entry[0]), _owner(name)
        self._bytes -= size
        self._owner_bytes[owner] -= size
        names = self._owners[owner]
        del names[name]
        if not names:
            del self._owners[owner], self._owner_bytes[owner]

    def _sweep_expired(self) -> None:
        # Writes come in order, but TTLs can differ (a reload changes them, and conversations
        # live longer than cached answers): all are looked at.
        now = self._clock.now()
        for name in [n for n, (_, expiry) in self._entries.items() if expiry <= now]:
            self._drop(name)


def index_name(kind: str, owner: str, part: int) -> str:
    """The name of an index of `kind` (a list of other documents) of `owner`: its `part`
    (a period). A memory store drops it to make room after every other document."""
    return f"{kind}{_INDEX}:{owner}:{part}"


def tombstone_name(kind: str, owner: str, name: str) -> str:
    """The name of the tombstone of `owner`'s deleted document `name` of `kind`. A memory
    store drops it to make room before every other document."""
    return f"{kind}{_TOMBSTONE}:{owner}:{name}"


def _owner(name: str) -> str:
    return name.rpartition(":")[0]


def _size(name: str, data: bytes | bytearray) -> int:
    # The name counts too: many empty documents must not grow the map without bound.
    return len(name) + len(data)
