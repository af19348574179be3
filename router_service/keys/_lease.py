"""KeyLease: the right to use one key for one attempt, released on every path."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router_service.keys._pool import KeyPool
    from router_service.outcomes import Outcome, Scope


@dataclass(frozen=True, slots=True)
class UpstreamKey:
    provider: str
    secret: str = field(repr=False)
    fingerprint: str
    max_in_flight: int | None
    weight: float
    rpm: int | None = None
    tpm: int | None = None

    def __str__(self) -> str:
        return f"{self.provider}:{self.fingerprint}"


class KeyLease:
    """Holds one in-flight slot of `key` for `model`. Use with `async with`; `release()` is
    idempotent, and the slot also carries a TTL in the state store as a backstop."""

    __slots__ = (
        "_calls",
        "_estimate",
        "_extra",
        "_lease_id",
        "_pool",
        "_released",
        "_settled",
        "_share",
        "key",
        "model",
        "tokens",
        "window",
    )

    def __init__(
        self,
        pool: KeyPool,
        key: UpstreamKey,
        model: str,
        lease_id: str,
        *,
        window: int = 0,
        tokens: int = 0,
    ) -> None:
        self._pool = pool
        self._lease_id = lease_id
        self._released = False
        self._settled = False
        # Slots of the calls run beside its own (`more_calls`): a list only once there are any.
        self._extra: Sequence[str] = ()
        self._calls = 1  # the upstream calls made under it (`more_calls`, `calls_not_made`)
        self.key = key
        self.model = model
        self.window = window
        self.tokens = tokens  # the estimate counted against the key's tpm window
        self._share = 1.0  # of its request's calls this attempt sends (`sends`)
        self._estimate = tokens  # the whole request's (`tokens` may become a share)

    @property
    def released(self) -> bool:
        return self._released

    @property
    def calls(self) -> int:
        """How many upstream calls were made under it: one, but for a split embeddings
        request's (`more_calls`, less those `calls_not_made`)."""
        return self._calls

    @property
    def slot_id(self) -> str:
        """Its slot's lease id in the state store (a route's record names it: any replica
        can give the slot back)."""
        return self._lease_id

    async def settle_tokens(self, actual: int) -> None:
        """Replace the token estimate with the usage the upstream reported (once)."""
        if self._settled or self.key.tpm is None:
            return
        self._settled = True
        if actual < 0:  # a buggy upstream's report: the estimate stays (no tokens given back)
            return
        if self._share != 1.0:  # the usage reported is the whole request's (`sends`)
            actual = math.ceil(actual * self._share)
        await self._pool._add_tokens(self, actual - self.tokens)

    async def not_sent(self) -> None:
        """Its call was never made (the conversation had no `max_sessions` place, the caller's
        deadline passed or it left first): the request and the token estimate its grant counted
        in the key's rate windows are taken out again, as the upstream saw neither (once; not
        after `settle_tokens`)."""
        if self._settled or (self.key.rpm is None and self.key.tpm is None):
            return
        self._settled = True
        await self._pool._add_tokens(self, -self.tokens, requests=-1)

    async def sends(self, sent: int, of: int) -> None:
        """This attempt sends only `sent` of its request's `of` calls: a failover that resumes a
        split embedding (the others were answered under an earlier key), or an attempt that
        failed after `sent` (those it never made are the next key's): the key's tpm counts
        their share of the request's estimate, and then of the usage reported for all (shares
        by calls: the batches are of a size but the last)."""
        if self.key.tpm is None or self._settled or not 0 < sent < of:
            return
        self._share = sent / of
        share = math.ceil(self._estimate * self._share)
        delta, self.tokens = share - self.tokens, share
        await self._pool._add_tokens(self, delta)

    async def more_calls(self, calls: int, at_once: int) -> int:
        """`calls` more upstream calls made under this lease (an embeddings request sent as
        several): counted in the key's rpm window now, before they go, so that this request and
        the others see them; how many of them (at most `at_once`) may run beside the lease's
        own call, each in an in-flight slot of the key taken now (none waited for: the rest run
        after), given back with the lease."""
        self._calls += calls
        if self.key.rpm is not None:
            await self._pool._add_tokens(self, 0, requests=calls)
        if self._released:
            return 0
        extra = [*self._extra]
        held = len(extra)
        self._extra = extra  # before they are taken: each is the lease's as soon as granted
        if not await self._pool._more_slots(self.key, at_once, extra):
            return at_once  # nothing limits the key's in-flight calls
        return len(extra) - held

    async def calls_not_made(self, calls: int) -> None:
        """`calls` of those `more_calls` counted were never made (the request failed or was
        left first): taken out of the key's rpm window again."""
        self._calls -= calls
        if self.key.rpm is not None and calls:
            await self._pool._add_tokens(self, 0, requests=-calls)

    async def report(
        self, outcome: Outcome, retry_after_s: float | None = None, scope: Scope | None = None
    ) -> None:
        """Its attempt's outcome, to the pool that leases its key now (`KeyPool.report`): a
        call under way across a reload reports to the reloaded pool (`KeyPool.hand_over`),
        under whose names (a renamed provider's) the key's cooldowns and disables are read."""
        pool = self._pool
        while pool.heir is not None and self.key.fingerprint in pool.heir.health:
            pool = pool.heir
        await pool.report(self.key, self.model, outcome, retry_after_s, scope)

    async def renew(self) -> bool:
        """Keep the slot past its TTL (a realtime session, which outlives it); False when it is
        no longer held (released, or expired before this renewal)."""
        if self._released:
            return False
        return await self._pool._renew(self.key, self._lease_id)

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        release = self._pool._release(self.key, self._lease_id, self._extra)
        if self._pool.store.completes_without_waiting:
            await release  # it never suspends: nothing can interrupt it
        else:
            # Shielded: a cancellation arriving while we give the slot back must not leak it.
            await asyncio.shield(release)

    async def __aenter__(self) -> KeyLease:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()
