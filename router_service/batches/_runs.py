"""BatchRuns: which replica runs a batch, and which batches run (so that another replica takes
over those whose runner stopped).

- A batch's **claim**: a member of the group `batch-claim:{batch}` (`StateStore.enter`, limit 1:
  one atomic step, so of two replicas racing one holds it), its member the runner's owner token,
  its mark expiring `batches.heartbeat_s` after the runner last renewed it (every third of that:
  entering again with the same owner, then leaving the older mark). A runner whose renewal is
  refused lost the batch (it paused past the heartbeat and another took it): it stops at once,
  writing nothing. A runner that stops gracefully leaves its claim: another takes it at once.
- The **running index**: one group (`batches-running`), a member per batch that has not ended
  (its client and id), so that a replica finds the orphans among the batches running, not among
  every key. Its mark's token is kept beside the batch (`batch-run:{batch}`), so that whichever
  replica ends the batch takes it out; it expires after the completion window and a heartbeat,
  should nobody ever end the batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson

from router_service.config import BatchesConfig
from router_service.responses import JobId
from router_service.sessions import client_document
from router_service.state import StateStore

__all__ = ["RUNNING_GROUP", "BatchRuns", "Claim"]

RUNNING_GROUP = "batches-running"
_FINISH_S = 3600.0  # what writing a batch's files may take after its window, at most


@dataclass(slots=True)
class Claim:
    """A runner's hold on one batch: its owner token and its live mark's token."""

    owner: str
    token: str


class BatchRuns:
    def __init__(self, store: StateStore, config: BatchesConfig) -> None:
        self._store = store
        self._config = config

    @property
    def config(self) -> BatchesConfig:
        return self._config

    async def claim(self, job: JobId, owner: str) -> Claim | None:
        """Hold `job` as `owner` unless another holds it."""
        token = await self._store.enter(
            _claims(job), owner, limit=1, ttl_s=self._config.heartbeat_s
        )
        return None if token is None else Claim(owner, token)

    async def renew(self, job: JobId, claim: Claim) -> bool:
        """Renew `claim` (in place); False when another replica holds the batch now."""
        token = await self._store.enter(
            _claims(job), claim.owner, limit=1, ttl_s=self._config.heartbeat_s
        )
        if token is None:
            return False
        old, claim.token = claim.token, token
        await self._store.leave(_claims(job), claim.owner, old)
        return True

    async def release(self, job: JobId, claim: Claim) -> None:
        """Let `job` go: another replica may take it at once."""
        await self._store.leave(_claims(job), claim.owner, claim.token)

    async def enlist(self, job: JobId) -> None:
        """Add a new batch to the running index."""
        ttl_s = self._config.completion_window_s + self._config.heartbeat_s + _FINISH_S
        member = orjson.dumps(list(job)).decode()
        token = await self._store.enter(RUNNING_GROUP, member, limit=None, ttl_s=ttl_s)
        assert token is not None  # no limit: always admitted
        await self._store.put_document(_run(job), token.encode(), ttl_s)

    async def delist(self, job: JobId) -> None:
        """Take an ended batch out of the running index."""
        (token,) = await self._store.get_documents([_run(job)])
        if token is not None:
            member = orjson.dumps(list(job)).decode()
            await self._store.leave(RUNNING_GROUP, member, token.decode())
            await self._store.delete_document(_run(job))

    async def running(self) -> list[JobId]:
        """The batches that have not ended, on any replica."""
        found: list[JobId] = []
        for member in await self._store.members(RUNNING_GROUP):
            try:
                client, batch_id = orjson.loads(member)
            except (orjson.JSONDecodeError, TypeError, ValueError):
                continue  # not ours (a foreign writer under the prefix)
            found.append((str(client), str(batch_id)))
        return found

    async def held(self, jobs: list[JobId]) -> list[bool]:
        """Whether each of `jobs` is held by a runner now (one round trip on Redis)."""
        return [bool(owner) for owner in await self.holders(jobs)]

    async def holders(self, jobs: list[JobId]) -> list[str]:
        """The owner token holding each of `jobs` now ("" when none)."""
        members = await asyncio.gather(*(self._store.members(_claims(job)) for job in jobs))
        return [next(iter(found), "") for found in members]


def _claims(job: JobId) -> str:
    client, batch_id = job
    return client_document("batch-claim", client, batch_id)


def _run(job: JobId) -> str:
    client, batch_id = job
    return client_document("batch-run", client, batch_id)
