"""The one StateStore interface (DESIGN.md §5). The memory store serves one process; a shared
store (Redis) serves replicas. Both speak the same small set of atomic primitives, so that every
decision the router takes is one call here and can be one round trip to a server.

Primitives:
- slots: counted holds on a resource within an in-flight limit and per-minute request and token
  windows, with a TTL backstop (a key's leases); one atomic decision per acquire (a slot
  without limits is only counted: a shared store may count it a little later); a holder that
  outlives the TTL renews it (`renew`: a realtime session); what the windows count can be read
  without counting (`rates`: an operator's view of a client's minute);
- deadlines: named wall-clock instants that can only be pushed later (cooldowns, disables);
- values: small strings with a TTL (a session's sticky deployment), one replaced only while it
  is what the caller read and a deadline is over (`set_value_if`: a key's why), atomically;
- counts: integers counted up atomically with a TTL, or cleared (a key's 429 strikes);
- groups: who is active where, one token per request, with a limit on distinct members
  (a provider serving a bounded number of sessions);
- buckets: time-bucketed counters with a TTL (routing statistics);
- documents: large byte strings with a TTL, written once and read a few times (stored Responses
  API responses); never kept in a read cache, bounded in bytes by the memory store. A write can
  be refused when the name holds a live document (`only_new`), within the same atomic step;
  bytes can be appended to a live one within a size bound, atomically (`append_document`: a
  conversation's changes, so that two replicas appending at once both keep theirs), and one
  can be rewritten only if it is still what the caller read (`replace_document`: a log
  compacted while others append to it); one written with `ttl_s=FOREVER` never expires and is
  never dropped to make room (the issued client keys' log);
- flights: a short lease on a name that one caller leads while the others watch for how it
  lands (the response cache's cross-replica coalescing, `_flights.py`): claimed in one atomic
  step, renewed by its owner while it lives, ended by its owner with a notice to every watcher
  of the name, on every replica (`_flight_store.py`).
Every entry expires; nothing grows with the number of requests.
"""

from __future__ import annotations

import enum
import math
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

from router_service.errors import StoreUnavailableError
from router_service.state._flight_store import FlightStore
from router_service.state._flights import FlightClaim, FlightWatch, Landing
from router_service.state._rates import RATE_WINDOW_S, RateCount
from router_service.state._values import ValueStore

# A document's `ttl_s` for one that must outlive everything else: no expiry, never dropped to
# make room (in memory it stands outside the documents' budget: its writer bounds it; on Redis
# it has no TTL, so a `volatile-*` eviction policy passes it by).
FOREVER = math.inf

# How long a deadline's clear is remembered against writes decided before it and written late
# (`extend_deadline(decided_at=…)`): a write queued through a longer outage lands as written.
CLEARED_KEPT_S = 7 * 86400.0

# Set in the tasks that write after the caller has its answer (engine/_afterwork.py): nobody
# waits for their writes, so a shared store may let them wait a little for company (Redis: a
# release leaves with the next commands on its connection instead of in a round trip of its
# own). Everywhere else a release is urgent: a failover waits for it.
UNHURRIED: ContextVar[bool] = ContextVar("switchboard_unhurried_writes", default=False)

__all__ = [
    "CLEARED_KEPT_S",
    "FOREVER",
    "RATE_WINDOW_S",
    "UNHURRIED",
    "AppendResult",
    "DocumentPart",
    "FlightClaim",
    "FlightWatch",
    "Landing",
    "PutResult",
    "RateCount",
    "RateWindows",
    "Reading",
    "SlotGrant",
    "SlotRequest",
    "StateStore",
    "StoreUnavailableError",
]


@dataclass(frozen=True, slots=True)
class SlotRequest:
    resource: str
    ttl_s: float
    max_in_flight: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    tokens: int = 0  # estimated tokens this use will cost (for tpm)
    # Deadlines that refuse the slot while any of them is in force (a key's disable and
    # cooldown, its provider's throttle), checked within the same atomic decision, before the
    # limits count anything: a lone candidate key is checked and leased in one round trip.
    unless: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RateWindows:
    """A resource's two fixed rate windows as an acquire left them (its request counted when
    granted, as found when refused) and the instant it decided: the sliding estimate and the
    waits its limits see are computed from them (`sliding_count`, `sliding_wait`), without
    reading the store again."""

    at: float  # the caller's clock when the store decided
    window: int  # the fixed minute `at` lies in
    requests: float
    tokens: float
    prev_requests: float
    prev_tokens: float


@dataclass(frozen=True, slots=True)
class SlotGrant:
    lease_id: str | None  # None: refused
    # When refused by a rate window: seconds until the window alone would admit it (0: the
    # in-flight limit refused; a release frees it).
    retry_after_s: float = 0.0
    window: int = 0  # the rate window the request and its tokens were counted in
    # The request's `unless` deadlines as found, in its order (0.0 where none is in force);
    # the slot was refused if any is non-zero.
    deadlines: tuple[float, ...] = ()
    # The rate windows, when the request has an rpm or tpm and reached them (None otherwise):
    # where its resource stands, from the same atomic decision.
    rate: RateWindows | None = None


class PutResult(enum.Enum):
    """What `StateStore.put_document` did."""

    KEPT = "kept"
    TOO_LARGE = "too_large"  # not kept: larger than the room the store has for documents
    EXISTS = "exists"  # not written (`only_new`): the name holds a live document, left as it was


class AppendResult(enum.Enum):
    """What `StateStore.append_document` did."""

    APPENDED = "appended"
    MISSING = "missing"  # no live document of that name (absent, expired, deleted): nothing kept
    TOO_LARGE = "too_large"  # it would pass `max_bytes` (or the store's room): left as it was


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """What `StateStore.read_document` read: a part of a document, and the whole one's size."""

    data: bytes
    size: int  # the whole document's bytes, when read


@dataclass(frozen=True, slots=True)
class Reading:
    """What `StateStore.read` found, each list in the order asked."""

    deadlines: list[float]
    held: list[int]
    values: list[str | None]
    rates: list[RateCount] = field(default_factory=list)


class StateStore(ValueStore, FlightStore):
    # Whether calls started together (in one event-loop turn) share one round trip: true for
    # Redis (our client pipelines them), so callers with independent writes start them at once.
    # In memory there is nothing to share, and starting tasks would only cost.
    batches_concurrent_calls: bool = False
    # Whether every call completes without suspending (in memory): a cancellation cannot cut one
    # short, so a lease's release needs no shield (a task per request) to be sure to finish.
    completes_without_waiting: bool = False

    @abstractmethod
    async def acquire(self, request: SlotRequest) -> SlotGrant:
        """Take one slot of `request.resource` if its in-flight limit and rate windows allow.

        The slot frees itself after `ttl_s` if never released (a crashed holder)."""

    @abstractmethod
    async def add_tokens(
        self, resource: str, window: int, delta: int, requests: int = 0, *, lease_id: str = ""
    ) -> None:
        """Correct the tokens counted for a grant once the real usage is known; `requests`:
        the calls made under the grant besides its own (an embeddings request sent as several),
        counted in the same window (negative: the un-count of calls counted that were never
        made, or of a request refused as invalid: `requests=-1` with its tokens); where the
        grant (`lease_id`) was counted, as its release goes (empty: wherever counts go now).
        A `window` the stored windows have not reached (the current minute) rolls them to it
        first, as a grant would: late tokens counted in their own minute (`CallerLimits.settle`)."""

    @abstractmethod
    async def release(self, resource: str, lease_id: str) -> None:
        """Give a slot back. Releasing twice, or after expiry, is harmless."""

    @abstractmethod
    async def renew(self, resource: str, lease_id: str, ttl_s: float) -> bool:
        """Push a held slot's expiry to `ttl_s` from now (never earlier than it was), for a
        holder that lives longer than the TTL it took it with; False when the slot is no longer
        held (released, or expired: nothing is taken again)."""

    @abstractmethod
    async def held(self, resources: Sequence[str]) -> list[int]:
        """How many slots of each resource are held now."""

    @abstractmethod
    async def rates(self, resources: Sequence[str]) -> list[RateCount]:
        """What each resource's rate windows count now (the sliding minute its rpm and tpm
        compare with), counting nothing; zeros where nothing was counted."""

    @abstractmethod
    async def move_slots(self, source: str, target: str) -> None:
        """Move to `target` the slots of `source` this store holds for this process (another
        replica's it releases itself, where it took them) and what `source`'s rate windows
        count, in one atomic step: they count against `target`'s limits from then on (a
        provider renamed by a reload). A release or renewal then finds a slot under `target`."""

    async def read(
        self,
        *,
        deadlines: Sequence[str] = (),
        held: Sequence[str] = (),
        values: Sequence[str] = (),
        rates: Sequence[str] = (),
    ) -> Reading:
        """`deadlines`, `held`, `get_values` and `rates` at once: what one decision reads (a
        plan, a key lease) or an operator asks, in one round trip where the store can (Redis);
        by default the separate calls."""
        return Reading(
            await self.deadlines(deadlines) if deadlines else [],
            await self.held(held) if held else [],
            await self.get_values(values) if values else [],
            await self.rates(rates) if rates else [],
        )

    @abstractmethod
    async def extend_deadline(
        self, name: str, until: float, *, decided_at: float | None = None
    ) -> float:
        """Set `name` to `until` unless it already ends later; return the deadline in force.

        A later, shorter cooldown never shortens an earlier, longer one. `decided_at`: when
        its writer decided it, for a write that comes late (replayed after an outage): it does
        not land if `name` was cleared after that instant (an operator's enable stands against
        a disable decided before it), in the same atomic step."""

    @abstractmethod
    async def deadlines(self, names: Sequence[str]) -> list[float]:
        """The deadline of each name, 0.0 where none is in force."""

    @abstractmethod
    async def clear_deadline(
        self,
        name: str,
        *,
        only: float | None = None,
        decided_at: float | None = None,
        remember: bool = True,
    ) -> None:
        """Remove a deadline at once (an operator re-enables a key; a probe succeeded). `only`:
        only while it is still that deadline, in the same atomic step (a clear replayed after
        an outage lifts the deadline its writer knew, not one set since by another replica).
        The clear is remembered for `CLEARED_KEPT_S` as of `decided_at` (default: now), so a
        deadline decided before it and written late does not undo it (`extend_deadline`).
        `remember=False`: a clear that is no one's decision (a probe passed), which such a
        write still undoes (an operator's disable decided before it: only an operator lifts
        it)."""

    @abstractmethod
    async def add_count(self, name: str, ttl_s: float, *, restart_if_before: float = 0.0) -> int:
        """One more on the counter `name` (on 0 when absent, expired, or first counted before
        `restart_if_before`: a success the caller saw since ended that streak), atomically:
        its total now, kept `ttl_s` from now (a key × model's 429 strikes, every replica's)."""

    @abstractmethod
    async def clear_count(self, name: str, *, up_to: float | None = None) -> None:
        """Forget the counter `name` (a success ends the strikes); with `up_to`, only when
        last counted at or before then (a clear replayed late leaves the strikes counted
        since). Harmless when absent."""

    @abstractmethod
    async def enter(
        self, group: str, member: str, *, limit: int | None, ttl_s: float
    ) -> str | None:
        """Mark one request of `member` active in `group`; return its token, or None when the
        group already has `limit` distinct other members. A member already inside is always
        admitted. Each mark expires after `ttl_s` if never left (a crashed process)."""

    @abstractmethod
    async def leave(self, group: str, member: str, token: str) -> None:
        """Remove exactly one request's mark. Harmless if already gone."""

    @abstractmethod
    async def members(self, group: str) -> dict[str, int]:
        """Active members of a group and how many requests each has there."""

    @abstractmethod
    async def add_to_bucket(
        self, name: str, bucket: int, counts: dict[str, float], ttl_s: float, *, at: str = ""
    ) -> str:
        """Add `counts` to the fields of one time bucket of `name`; where they were counted
        (opaque, never empty), for a correction of the same count (`at`: there; empty:
        wherever counts go now)."""

    @abstractmethod
    async def read_buckets(self, names: Sequence[str]) -> list[dict[int, dict[str, float]]]:
        """Every live bucket of each name: {bucket: {field: total}}."""

    @abstractmethod
    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        """Keep `data` under `name` for `ttl_s`, replacing what was there; with `only_new`, only
        when `name` holds no live document (none, expired or deleted: EXISTS otherwise, decided
        in the same atomic step as the write, so of two writers racing one wins). TOO_LARGE:
        not kept (larger than the room the store has for documents)."""

    @abstractmethod
    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        """Append `data` to the live document `name`, keeping its expiry, unless it would then be
        larger than `max_bytes`: one atomic step, so appends racing each other (two replicas)
        are all kept, in some order, and none is lost to another's read-modify-write."""

    @abstractmethod
    async def replace_document(
        self, name: str, data: bytes, ttl_s: float, *, size: int, head: bytes
    ) -> bool:
        """Replace the live document `name` by `data`, kept for `ttl_s` from now (FOREVER: no
        expiry; KEEP_EXPIRY: its own), only if it is still `size` bytes long and begins with
        `head`: a compare-and-swap for a document that only grows between rewrites (an append
        since the caller read it makes it longer; a rewrite by another changes its head), in
        one atomic step. False: left as it was (changed, or gone)."""

    @abstractmethod
    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        """Each name's document, None where absent or expired."""

    @abstractmethod
    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        """At most `max_bytes` of the live document `name` from byte `start` (empty past its
        end), with its size; None where absent or expired. A reader of a growing document
        (appended to) reads on from where it stopped, not the whole document again."""

    @abstractmethod
    async def delete_document(self, name: str) -> bool:
        """Remove `name`'s document; False when there was none (absent or expired)."""

    async def delete_documents(self, names: Sequence[str]) -> None:
        """Remove every document of `names` (an upload's parts): few round trips for many."""
        for name in names:
            await self.delete_document(name)

    def read_cache_counts(self) -> dict[str, int]:
        """Reads answered from a read cache (`hit`), from the server (`miss`), and keys the
        server reported changed (`invalidated`), since start; empty without a read cache."""
        return {}

    def outage_counts(self) -> dict[str, int]:
        """For a store with a shared backend: `degraded` (1 while it is unreachable and this
        replica serves from local state, else 0), `outages` (times it was lost since start) and
        `fallbacks` (calls answered locally since start); empty without a shared backend."""
        return {}

    async def everywhere(self, kind: str, write: Callable[[StateStore], Awaitable[object]]) -> None:
        """Run `write` on this store; on one with a shared backend, on its local state and on
        the shared backend, now or, that one unreachable, once it answers again (queued as its
        other writes are: `kind` names it in a warning). For an undo nobody waits on, made
        again whole when it is replayed (a refused thing's place in its client's index)."""
        await write(self)

    def retry_shared(self) -> None:
        """For a store whose shared backend failed (`outage_counts()["degraded"]`): its next
        call asks that backend again, whatever its retry interval (an issued key's read back
        must reach the log a write went to). Nothing for a store without one."""
        return None

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections. Idempotent."""
