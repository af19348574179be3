"""A background response's place among its client's running ones (`responses.
max_background_per_client`, across the replicas: `StateStore.enter`, a mark per job that expires
should its replica crash).

A job waiting out a cooldown (every deployment of its model cooling: an unattended call waits
where a caller on a socket is refused, `RequestContext.unattended`) steps aside for the wait
(`JobPlace.aside`, the planner's `RequestContext.set_aside`): its place goes back, so its
client's other responses (another model's, which another deployment serves) start meanwhile
instead of a 429, and it takes one again before it is routed, once there is room (read every
`CHECK_S` on the router's clock). No more of a client's jobs wait so than
`max_background_per_client` (a mark of their own, `bg-aside:`, kept until the job has its place
back): one past it waits holding its place, as a batch's line past `batches.concurrency` does
(`_line_slots.py`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.errors import StoreUnavailableError
from router_service.sessions import client_scoped
from router_service.state import StateStore

__all__ = ["JobPlace"]

log = logging.getLogger("switchboard.router")

CHECK_S = 1.0  # how often a job back from its wait reads whether a place is free


@dataclass(eq=False)
class JobPlace:
    """One job's place (`token`: its mark; "" while it is given back)."""

    store: StateStore
    clock: Clock
    client: str
    job_id: str
    limit: Callable[[], int]  # the cap in force now (a reload's, after the job's start)
    ttl_s: float  # a mark's: the job's time limit and a heartbeat
    token: str = ""

    @property
    def group(self) -> str:
        return "bg-jobs:" + client_scoped(self.client, "")

    async def enter(self) -> bool:
        """Take a place, if the client's jobs leave one."""
        limit, ttl_s = self.limit(), self.ttl_s
        token = await self.store.enter(self.group, self.job_id, limit=limit, ttl_s=ttl_s)
        self.token = token or ""
        return token is not None

    async def leave(self) -> None:
        """Give the place back (none held: nothing); a failure (the state store lost) is
        logged, not raised over how the job ended: the place expires with its TTL."""
        token, self.token = self.token, ""
        if not token:
            return
        try:
            await uncut(self.store.leave(self.group, self.job_id, token))
        except Exception:
            log.warning(
                "background response %s: its place among the client's jobs was not given back"
                " (it expires after responses.background_timeout_s)",
                self.job_id,
                exc_info=True,
            )

    @asynccontextmanager
    async def aside(self) -> AsyncIterator[None]:
        """The place given back while the job waits (unless as many of the client's jobs wait
        so already, or the store cannot tell), taken again after the wait; a wait cancelled
        (the job cancelled, stopped, out of time) takes none."""
        aside = "bg-aside:" + client_scoped(self.client, "")
        try:
            mark = await self.store.enter(aside, self.job_id, limit=self.limit(), ttl_s=self.ttl_s)
        except StoreUnavailableError:
            mark = None
        if mark is None or not self.token:
            if mark is not None:
                await _forget(self.store, aside, self.job_id, mark)
            yield
            return
        try:
            await self.leave()
            yield
            # Back: routed once a place is free, still counted among those waiting without
            # one until then (else another steps aside meanwhile, and a third takes its place).
            while not await self.enter():
                await self.clock.sleep(CHECK_S)
        finally:
            await _forget(self.store, aside, self.job_id, mark)


async def _forget(store: StateStore, group: str, job_id: str, mark: str) -> None:
    """Leave `group`: a failure is logged (the mark expires with its TTL), never raised over
    the wait's own end (its cancellation included)."""
    try:
        await uncut(store.leave(group, job_id, mark))
    except Exception:
        log.warning("background response %s: its wait's mark not given back", job_id)
