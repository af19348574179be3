"""ResilientStateStore: shared state while it answers, this replica's own state while it does not.

DESIGN.md §5: a Redis outage degrades to local state with a warning instead of failing requests.
- Healthy: every call goes to the shared store. Deadlines are also written to, and mirrored
  into, the local store as they are read, so a replica that loses Redis still knows which keys
  and models were disabled or cooling when it lost it. Values are written through as well;
  counts (a key's 429 strikes) are mirrored as counted there, counted on locally in an outage.
- Unreachable (a `StoreUnavailableError`): the call is answered by the local store, with one
  warning per outage. Leases and marks taken locally carry a `~` tag, so they are given back
  where they were taken. Writes the shared store must not miss (releases, leaves, deadline
  changes, values: a key's disable and why; `everywhere`'s undos) are queued, bounded, and
  replayed in order when it is back; a lease the shared store never hears released still
  frees itself by its TTL. A queued deadline write carries when it was decided: replayed, it
  does not undo a clear made since (an operator's enable on another replica: the later
  decision stands).
- Recovery: while degraded, one call at a time, at most every `retry_interval_s`, tries the
  shared store; when it answers, the queue is replayed and the replica is back on shared state.
  A probe cancelled while it rejoins, after the shared store granted it a slot, a mark or a
  flight, gives that back before it ends (never held there for its TTL). The machinery of this:
  `_resilient_sides.py`.

Documents (stored Responses) go to the shared store; during an outage to the local one (bounded
by `state.memory_document_bytes`, the largest holder's oldest dropped first), not replayed: the
replica that stored them still continues them, also after Redis is back (looked for locally when
the shared store lacks one), the others answer NOT_FOUND. An append goes where its document is:
to one of the shared store's it is refused during an outage (StoreUnavailableError), not kept
aside where the other replicas would never see it. So is a delete of one not kept here (only the
shared store can tell whether it holds it: "not found" would be a guess, and a wrong one); a
delete through `everywhere` (a refused upload's, written by nobody again) is queued for it instead.

Limits meant per key hold per replica during an outage (each counts only its own leases and
marks, those the shared store granted it before, still under way, too: mirrored here as
granted): the price of requests flowing on. Telemetry: `degraded`, `fallback_count`,
`outages`, and more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Collection, Sequence
from functools import partial

from router_service.state._base import (
    RateCount,
    Reading,
    SlotGrant,
    SlotRequest,
    StateStore,
)
from router_service.state._journal import expiring
from router_service.state._resilient_documents import ResilientDocuments, _Down
from router_service.state._resilient_flights import ResilientFlights
from router_service.state._resilient_sides import SharedOrLocal

_LOCAL = "~"  # tags a lease id or mark token issued by the local store
_SHARED = "shared"  # where `add_to_bucket` counted: on the shared store (else `_LOCAL`)


class ResilientStateStore(SharedOrLocal, ResilientDocuments, ResilientFlights, StateStore):
    async def everywhere(self, kind: str, write: Callable[[StateStore], Awaitable[object]]) -> None:
        await write(self.local)  # what was kept here during an outage
        await self._write(kind, lambda: write(self.shared))

    # -- slots ---------------------------------------------------------------------------------
    async def acquire(self, request: SlotRequest) -> SlotGrant:
        grant = await self._try_shared(
            lambda: self.shared.acquire(request),
            lambda taken: (
                partial(self.shared.release, request.resource, taken.lease_id)
                if taken.lease_id is not None
                else None
            ),
        )
        if not isinstance(grant, _Down):
            if request.unless:  # an outage starts from what all knew (as after a read)
                self.local.mirror_deadlines(request.unless, grant.deadlines)
            if grant.lease_id is not None:  # so are this replica's own leases under way
                expiry = self._clock.now() + request.ttl_s
                self.local.mirror_lease(request.resource, grant.lease_id, expiry)
            return grant
        grant = await self.local.acquire(request)
        if grant.lease_id is None:
            return grant
        return dataclasses.replace(grant, lease_id=_LOCAL + grant.lease_id)

    async def add_tokens(
        self, resource: str, window: int, delta: int, requests: int = 0, *, lease_id: str = ""
    ) -> None:
        add = (resource, window, delta, requests)
        if lease_id.startswith(_LOCAL):  # counted here in an outage: corrected here, not there
            await self.local.add_tokens(*add)
            return
        lost = isinstance(await self._try_shared(lambda: self.shared.add_tokens(*add)), _Down)
        # One counted on the shared store, which is lost: its estimate stays counted there (as
        # after any failed correction), never taken off local counts that lack it.
        if lost and not lease_id:
            await self.local.add_tokens(*add)

    async def release(self, resource: str, lease_id: str) -> None:
        if lease_id.startswith(_LOCAL):
            await self.local.release(resource, lease_id.removeprefix(_LOCAL))
        else:
            await self.local.release(resource, lease_id)  # its mirror (`acquire`)
            await self._write("release", lambda: self.shared.release(resource, lease_id))

    async def renew(self, resource: str, lease_id: str, ttl_s: float) -> bool:
        if lease_id.startswith(_LOCAL):
            return await self.local.renew(resource, lease_id.removeprefix(_LOCAL), ttl_s)
        await self.local.renew(resource, lease_id, ttl_s)  # its mirror (`acquire`)
        renewed = await self._try_shared(lambda: self.shared.renew(resource, lease_id, ttl_s))
        # Unreachable: whether it is still held there is unknown; the holder's next renewal
        # asks again (not queued: a late renewal would only hold it past its holder's end).
        return True if isinstance(renewed, _Down) else renewed

    async def move_slots(self, source: str, target: str) -> None:
        await self.local.move_slots(source, target)  # those taken during an outage
        await self._try_shared(lambda: self.shared.move_slots(source, target))  # else by TTL

    async def held(self, resources: Sequence[str]) -> list[int]:
        counts = await self._try_shared(lambda: self.shared.held(resources))
        return await self.local.held(resources) if isinstance(counts, _Down) else counts

    async def rates(self, resources: Sequence[str]) -> list[RateCount]:
        found = await self._try_shared(lambda: self.shared.rates(resources))
        return await self.local.rates(resources) if isinstance(found, _Down) else found

    # -- deadlines -----------------------------------------------------------------------------
    async def extend_deadline(
        self, name: str, until: float, *, decided_at: float | None = None
    ) -> float:
        local = await self.local.extend_deadline(name, until, decided_at=decided_at)
        shared = await self._try_shared(
            lambda: self.shared.extend_deadline(name, until, decided_at=decided_at)
        )
        if isinstance(shared, _Down):
            # Replayed, it lands only if the name was not cleared since (an enable on another
            # replica, meanwhile, is the later decision).
            at = self._clock.now() if decided_at is None else decided_at
            late = partial(self.shared.extend_deadline, name, until, decided_at=at)
            self._journal.add("extend_deadline", late)
            return local
        return shared

    async def deadlines(self, names: Sequence[str]) -> list[float]:
        until = await self._try_shared(lambda: self.shared.deadlines(names))
        if isinstance(until, _Down):
            return await self.local.deadlines(names)
        self.local.mirror_deadlines(names, until)  # an outage starts from what all knew
        return until

    async def read(
        self,
        *,
        deadlines: Sequence[str] = (),
        held: Sequence[str] = (),
        values: Sequence[str] = (),
        rates: Sequence[str] = (),
    ) -> Reading:
        asked = {"deadlines": deadlines, "held": held, "values": values, "rates": rates}
        found = await self._try_shared(lambda: self.shared.read(**asked))
        if isinstance(found, _Down):
            return await self.local.read(**asked)
        self.local.mirror_deadlines(deadlines, found.deadlines)
        return found

    async def clear_deadline(
        self,
        name: str,
        *,
        only: float | None = None,
        decided_at: float | None = None,
        remember: bool = True,
    ) -> None:
        # Queued, it lifts only the deadline known here (none: none), not one set since.
        known = only if only is not None else (await self.local.deadlines([name]))[0] or None
        await self.local.clear_deadline(name, only=only, decided_at=decided_at, remember=remember)
        cleared = await self._try_shared(
            lambda: self.shared.clear_deadline(
                name, only=only, decided_at=decided_at, remember=remember
            )
        )
        if isinstance(cleared, _Down) and known is not None:
            at = self._clock.now() if decided_at is None else decided_at
            late = partial(
                self.shared.clear_deadline, name, only=known, decided_at=at, remember=remember
            )
            self._journal.add("clear_deadline", late)

    # -- values --------------------------------------------------------------------------------
    async def set_value(self, name: str, value: str, ttl_s: float) -> None:
        await self.local.set_value(name, value, ttl_s)
        write = expiring(self._clock, ttl_s, lambda left: self.shared.set_value(name, value, left))
        await self._write("set_value", write)

    async def set_value_if(
        self, name: str, value: str, ttl_s: float, *, was: Collection[str | None], unless: str
    ) -> bool:
        # Not queued in an outage: written late, it could replace a why written meanwhile.
        local = await self.local.set_value_if(name, value, ttl_s, was=was, unless=unless)
        shared = await self._try_shared(
            lambda: self.shared.set_value_if(name, value, ttl_s, was=was, unless=unless)
        )
        return local if isinstance(shared, _Down) else shared

    async def get_values(self, names: Sequence[str]) -> list[str | None]:
        values = await self._try_shared(lambda: self.shared.get_values(names))
        return await self.local.get_values(names) if isinstance(values, _Down) else values

    # -- counts --------------------------------------------------------------------------------
    async def add_count(self, name: str, ttl_s: float, *, restart_if_before: float = 0.0) -> int:
        total = await self._try_shared(
            lambda: self.shared.add_count(name, ttl_s, restart_if_before=restart_if_before)
        )
        if isinstance(total, _Down):
            return await self.local.add_count(name, ttl_s, restart_if_before=restart_if_before)
        self.local.mirror_count(name, total, ttl_s)  # an outage counts on from it
        return total

    async def clear_count(self, name: str, *, up_to: float | None = None) -> None:
        await self.local.clear_count(name, up_to=up_to)
        # Replayed late, only over what was counted by the clear, not others' strikes since.
        at = self._clock.now() if up_to is None else up_to
        cleared = await self._try_shared(lambda: self.shared.clear_count(name, up_to=up_to))
        if isinstance(cleared, _Down):
            self._journal.add("clear_count", lambda: self.shared.clear_count(name, up_to=at))

    # -- groups --------------------------------------------------------------------------------
    async def enter(
        self, group: str, member: str, *, limit: int | None, ttl_s: float
    ) -> str | None:
        token = await self._try_shared(
            lambda: self.shared.enter(group, member, limit=limit, ttl_s=ttl_s),
            lambda taken: (
                None if taken is None else partial(self.shared.leave, group, member, taken)
            ),
        )
        if not isinstance(token, _Down):
            if token is not None:  # counted here in an outage, as a lease (`acquire`)
                self.local.mirror_mark(group, member, token, self._clock.now() + ttl_s)
            return token
        token = await self.local.enter(group, member, limit=limit, ttl_s=ttl_s)
        return None if token is None else _LOCAL + token

    async def leave(self, group: str, member: str, token: str) -> None:
        if token.startswith(_LOCAL):
            await self.local.leave(group, member, token.removeprefix(_LOCAL))
        else:
            await self.local.leave(group, member, token)  # its mirror (`enter`)
            await self._write("leave", lambda: self.shared.leave(group, member, token))

    async def members(self, group: str) -> dict[str, int]:
        found = await self._try_shared(lambda: self.shared.members(group))
        return await self.local.members(group) if isinstance(found, _Down) else found

    # -- buckets -------------------------------------------------------------------------------
    async def add_to_bucket(
        self, name: str, bucket: int, counts: dict[str, float], ttl_s: float, *, at: str = ""
    ) -> str:
        """Counted on the shared store (`_SHARED`), or here when it is unreachable (`_LOCAL`);
        a correction (`at`) where its count was, as `add_tokens`' by its grant's lease."""
        add = (name, bucket, counts, ttl_s)
        if at == _LOCAL:
            await self.local.add_to_bucket(*add)
            return _LOCAL
        if not isinstance(await self._try_shared(lambda: self.shared.add_to_bucket(*add)), _Down):
            return _SHARED
        if at:  # counted on the shared store, which is lost: its count stays as it was there
            return _SHARED
        await self.local.add_to_bucket(*add)
        return _LOCAL

    async def read_buckets(self, names: Sequence[str]) -> list[dict[int, dict[str, float]]]:
        found = await self._try_shared(lambda: self.shared.read_buckets(names))
        return await self.local.read_buckets(names) if isinstance(found, _Down) else found

    def read_cache_counts(self) -> dict[str, int]:
        return self.shared.read_cache_counts()

    def outage_counts(self) -> dict[str, int]:
        degraded, outages, fallbacks = int(self.degraded), self.outages, self.fallback_count
        return {"degraded": degraded, "outages": outages, "fallbacks": fallbacks}

    def retry_shared(self) -> None:
        self._retry_at = 0.0  # `_try_shared`: the next call probes the shared store

    async def aclose(self) -> None:
        await self.shared.aclose()
        await self.local.aclose()
