"""The issued client keys' log (`client-keys` in the state store), as a replica reads, folds and
compacts it (`_issued.py` issues and follows).

The log is one document kept `FOREVER` (no TTL, never dropped to make room: losing it would
lose every issued key), one JSON event a line. Its first line is its head, `{"op": "head",
"generation": <random>}`: a compaction rewrites the log as a new head and the `issue` lines of
the keys still live, kept FOREVER (a log written with a TTL before loses it), in one
compare-and-swap (`StateStore.replace_document`: only if the log is
still as long as the compactor read it and begins with the same head). An append that came
after the compactor's read makes the log longer, so that rewrite fails and nothing is lost; an
append after the rewrite lands on the new log. A reader reads on from where it stopped, then
checks the head: another one means the log was rewritten, and it reads the new one from its
start (a log written before heads existed is known by its first line all the same).
"""

from __future__ import annotations

import bisect
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from router_service._masking import shown_label
from router_service.keys import digest_fingerprint
from router_service.state import DocumentLines, StateStore

__all__ = [
    "LOG_NAME",
    "IssuedKey",
    "KeySet",
    "LogReader",
    "RealtimeGrant",
    "head_line",
    "read_whole",
    "snapshot",
]

log = logging.getLogger("switchboard.auth")

LOG_NAME = "client-keys"


@dataclass(frozen=True, slots=True)
class RealtimeGrant:
    """What an ephemeral Realtime client secret allows: Realtime sessions of `model` only,
    each started with `session` (OpenAI's session config, JSON) as its first `session.update`."""

    model: str
    session_json: str


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """One issued key as every replica knows it; never the key itself."""

    id: str
    client: str
    label: str
    fingerprint: str  # `fp_` + 12 hex digits of its SHA-256, as every key is shown
    created_unix: float
    expires_unix: float | None
    digest: bytes  # its SHA-256: what a presented key is looked up by
    realtime: RealtimeGrant | None = None  # an ephemeral Realtime client secret's grant
    # The key that asked for it: an issued key's id (`ck_`), a configured key's fingerprint
    # (`fp_`: `Authenticator` refuses the secret once that key is no longer configured).
    parent: str = ""

    def live(self, now: float) -> bool:
        return self.expires_unix is None or now < self.expires_unix


class KeySet:
    """The keys a log's events fold into, in log order, with each key's `issue` line (what a
    compaction writes again)."""

    def __init__(self) -> None:
        self.by_id: dict[str, IssuedKey] = {}
        self.by_digest: dict[bytes, IssuedKey] = {}
        self.issue_lines: dict[str, bytes] = {}
        # An issued key's id -> the ephemeral secrets it asked for: its revocation ends them.
        self.children: dict[str, set[str]] = {}
        # (client, ephemeral) -> its keys' expiries: what an issue's bound is checked against
        # (a scan of every key for each line made a full read quadratic: 15 000 keys, 9 s of
        # a blocked event loop on every replica after each compaction)
        self._of_kind: dict[tuple[str, bool], _Expiries] = {}
        self.events = 0  # lines folded: what the log holds, next to what is live

    def fold_line(self, line: bytes) -> None:
        try:
            self.fold(orjson.loads(line), line)
        except (ValueError, KeyError, TypeError):  # not ours: left out, not fatal
            log.warning("issued client keys: a line of the log is not an event")

    def fold(self, event: dict[str, Any], line: bytes) -> None:
        self.events += 1
        if event["op"] == "head":
            return
        if event["op"] == "revoke":
            self._drop(event["id"])
            return
        parent = _text(event.get("parent", ""))
        if parent.startswith("ck_") and parent not in self.by_id:
            return  # asked for by an issued key revoked since (or void): void too
        created = float(event["created"])
        grant = event.get("realtime")
        # Ephemeral keys and the others are bounded apart (`max_ephemeral_keys`).
        ephemeral = grant is not None
        mine = self._of_kind.setdefault((_text(event["client"]), ephemeral), _Expiries())
        if mine.live_at(created) >= int(event["max"]):
            return  # issued past the bound by a replica racing another: void on every replica
        # An ephemeral secret's line (its session config) counts in its client's share of the
        # log (`max_bytes`, the share its issuer applied; lines written before shares have none).
        size = len(line) + 1 if ephemeral else 0
        if "max_bytes" in event and mine.bytes_at(created) + size > int(event["max_bytes"]):
            return  # past the share, as past the bound: void on every replica
        digest = bytes.fromhex(event["sha256"])
        expires = event["expires"]
        # Strings, checked here as the rest: a grant that is not is left out with its line.
        realtime = (
            None if grant is None else RealtimeGrant(_text(grant["model"]), _text(grant["session"]))
        )
        key = IssuedKey(
            id=_text(event["id"]),
            client=_text(event["client"]),
            label=shown_label(_text(event["label"])),  # one pasted before the check
            fingerprint=digest_fingerprint(event["sha256"]),
            created_unix=created,
            # Read as a number here: a line that holds anything else is left out (fold_line),
            # not kept to fail every lookup of its key.
            expires_unix=None if expires is None else float(expires),
            digest=digest,
            realtime=realtime,
            parent=parent,
        )
        self.by_id[key.id] = key
        self.by_digest[digest] = key
        self.issue_lines[key.id] = line
        mine.add(key.expires_unix, size)
        if parent.startswith("ck_"):
            self.children.setdefault(parent, set()).add(key.id)

    def _drop(self, key_id: str) -> None:
        """A revoked key, and the ephemeral secrets it asked for."""
        gone = self.by_id.pop(key_id, None)
        if gone is not None:
            self.by_digest.pop(gone.digest, None)
            line = self.issue_lines.pop(gone.id)
            ephemeral = gone.realtime is not None
            size = len(line) + 1 if ephemeral else 0
            self._of_kind[(gone.client, ephemeral)].remove(gone.expires_unix, size)
        for child in self.children.pop(key_id, ()):
            self._drop(child)

    def live_count(self, now: float) -> int:
        return sum(1 for key in self.by_id.values() if key.live(now))

    def ephemeral_bytes(self, client: str, now: float) -> int:
        """The bytes of the log that `client`'s ephemeral secrets live at `now` take."""
        mine = self._of_kind.get((client, True))
        return 0 if mine is None else mine.bytes_at(now)


class _Expiries:
    """The expiries of a client's keys of one kind, sorted, each with the bytes its line takes
    (counted for ephemeral secrets only: 0 for the others): how many are live at an instant,
    and how much of the log they take."""

    def __init__(self) -> None:
        self.never = 0  # keys without an expiry
        self.never_bytes = 0
        self.times: list[float] = []
        self.sizes: list[int] = []  # of the key whose expiry is at the same place in `times`

    def add(self, expires: float | None, size: int = 0) -> None:
        if expires is None:
            self.never += 1
            self.never_bytes += size
        else:
            at = bisect.bisect_right(self.times, expires)
            self.times.insert(at, expires)
            self.sizes.insert(at, size)

    def remove(self, expires: float | None, size: int = 0) -> None:
        if expires is None:
            self.never -= 1
            self.never_bytes -= size
            return
        at = bisect.bisect_left(self.times, expires)
        while self.sizes[at] != size:  # another key with the same expiry
            at += 1
        del self.times[at]
        del self.sizes[at]

    def live_at(self, now: float) -> int:
        """Those live at `now` (`IssuedKey.live`: no expiry, or `now` before it)."""
        return self.never + len(self.times) - bisect.bisect_right(self.times, now)

    def bytes_at(self, now: float) -> int:
        """The bytes of those live at `now`."""
        return self.never_bytes + sum(self.sizes[bisect.bisect_right(self.times, now) :])


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def head_line() -> bytes:
    """A new log's first line: a generation no other log had."""
    return orjson.dumps({"op": "head", "generation": secrets.token_hex(8)}) + b"\n"


def snapshot(keys: KeySet, now: float) -> bytes:
    """A new log holding the keys of `keys` still live at `now`, in their order."""
    kept = [
        line + b"\n" for key_id, line in keys.issue_lines.items() if keys.by_id[key_id].live(now)
    ]
    return head_line() + b"".join(kept)


class LogReader:
    """The log's lines, read on from where the last read stopped, across rewrites: `more`
    says `rewritten` when the log is a new one, whose lines then start over."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._lines = DocumentLines(store, LOG_NAME)
        self.head = b""  # the first line of the log being read ("" before it was read)
        self.offset = 0  # bytes read so far: what a compaction compares the log's size with

    async def more(self) -> tuple[list[bytes], bool] | None:
        """(lines since the last read, whether the log was rewritten since: then the lines are
        the new log's from its start); None when there is no log."""
        lines = await self._lines.more()
        if lines is None:
            return None
        if not self.head:
            if not lines:
                return [], False
            self.head = lines[0] + b"\n"
        elif not await self._same_head():  # checked after the read: a rewrite during it shows
            self._restart()
            again = await self.more()
            return None if again is None else (again[0], True)
        self.offset += sum(len(line) + 1 for line in lines)
        return lines, False

    async def _same_head(self) -> bool:
        part = await self._store.read_document(LOG_NAME, 0, len(self.head))
        return part is not None and part.data == self.head

    @property
    def behind(self) -> bool:
        return self._lines.behind

    def _restart(self) -> None:
        self._lines = DocumentLines(self._store, LOG_NAME)
        self.head = b""
        self.offset = 0


async def read_whole(store: StateStore) -> tuple[KeySet, LogReader] | None:
    """The log as it is now, folded from its start (a compaction's read); None without one."""
    reader, keys = LogReader(store), KeySet()
    while True:
        found = await reader.more()
        if found is None:
            return None
        lines, rewritten = found
        if rewritten:
            keys = KeySet()
        for line in lines:
            keys.fold_line(line)
        if not reader.behind:
            return keys, reader
