"""Background responses (OpenAI's `background: true`) in the state store: what every replica
reads, whichever runs the job (the runner: `router_service/server/_background.py`).

A background response is a stored response (`StoredResponses`: one document per client and id,
written once when it starts, within the client's quota) whose `background_status` says where it
is: `queued`, `in_progress`, then `completed`, `incomplete`, `failed` or `cancelled`. Only the
replica running it rewrites it. Beside it:

- its **end mark**, a small document written once (`put_document(only_new=True)`): `done` by
  the runner as it finishes, `cancelled` by a cancel, on any replica. Whoever writes it first
  decides: a response answered as cancelled is never then completed, nor a completed one
  cancelled. The runner reads its jobs' marks (one read for all, every second) and stops those
  cancelled elsewhere.
- its **heartbeat**, a value that expires `responses.background_heartbeat_s` after the runner
  last renewed it (every third of that). A replica that crashed renews nothing: a running
  response whose heartbeat has expired reads as `failed` (`resolve`), without a sweeper.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence

import orjson

from clients import background_cancelled, background_failed
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import Clock
from router_service.config import ResponsesConfig
from router_service.errors import InvalidRequestError, StoreUnavailableError
from router_service.responses._stored import StoredResponses, response_name
from router_service.responses._stream_log import StreamLog, StreamWriter
from router_service.sessions import client_scoped
from router_service.state import PutResult, StateStore

log = logging.getLogger("switchboard.router")

__all__ = [
    "CANCELLED",
    "DELETED",
    "DONE",
    "RUNNING",
    "STOPPED_MESSAGE",
    "BackgroundRecords",
    "JobId",
    "settle",
]

# The statuses of a response still running.
RUNNING = frozenset({"queued", "in_progress"})
# End marks. DELETED: the response was deleted while it ran (its runner writes nothing more).
DONE, CANCELLED, DELETED = b"done", b"cancelled", b"deleted"
STOPPED_MESSAGE = (
    "The replica running this background response stopped before it finished: create it again."
)
# Why a start is refused when its response cannot be stored (`StoreResponseResponse.reason`).
_NOT_STORED = {
    "disabled": "Background responses need stored responses, which are turned off on this "
    "router (responses.store: false).",
    "too_large": "The request is too large to be kept as a background response "
    "(responses.max_stored_bytes).",
    "over_quota": "This client stored its responses.client_stored_bytes this period: a "
    "background response cannot be kept until the next.",
}

JobId = tuple[str, str]  # (client, response id)


@contextlib.contextmanager
def _left_in_an_outage(response_id: str, what: str) -> Iterator[None]:
    """A delete of `what` the shared store did not hear of (StoreUnavailableError): at debug
    level, not a warning. It is refused whenever the store is down and this replica holds no
    such document, which is nearly always because there is none (a response deleted here
    already, one never streamed, no earlier end mark), so a warning would be wrong and come
    with every request. The outage itself is logged once (`switchboard.state`)."""
    try:
        yield
    except StoreUnavailableError as exc:
        log.debug(
            "background response %s: %s, if the shared store holds one, not deleted there: %s",
            response_id,
            what,
            exc.message,
        )


class BackgroundRecords:
    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        config: ResponsesConfig,
        stored: StoredResponses,
        *,
        kind: str = "bg",
        mark_ttl_s: float | None = None,
    ) -> None:
        self._store = store
        # How long an end mark is kept: as long as what it ends (`store_ttl_s`, a stored
        # response's; a batch's record lives `files.ttl_s`).
        self._mark_ttl_s = config.store_ttl_s if mark_ttl_s is None else mark_ttl_s
        # Names its marks and beats: batches keep theirs apart (`kind="batch"`), so that a
        # background response's id (a gRPC caller may choose it) never reaches a batch's.
        self._kind = kind
        self._clock = clock
        self._config = config
        self._stored = stored
        self.streams = StreamLog(store, config)  # the events of the streamed ones

    @property
    def config(self) -> ResponsesConfig:
        return self._config

    async def begin(self, client: str, document: pb.StoredResponse) -> None:
        """Keep a queued response as `client`'s (written once, within its quota: refused with
        InvalidRequestError when it cannot be kept), its heartbeat first: a reader never finds
        it without one."""
        await self.beat([(client, document.id)])
        kept = await self._stored.save(client, document, ttl_s=self._kept_s(document))
        if not kept.stored:
            raise InvalidRequestError(
                _NOT_STORED.get(kept.reason, "The background response cannot be kept."),
                param="background",
                code="background_not_stored",
            )
        # The id is new to the client, or its response was deleted: an end mark left of that
        # one (a gRPC caller may reuse an id) is not this one's. During a store outage one
        # only the shared store may hold cannot be deleted: this one's goes to local state.
        with _left_in_an_outage(document.id, "an earlier end mark"):
            await self._store.delete_document(self._end(client, document.id))

    async def write(self, client: str, document: pb.StoredResponse) -> bool:
        """Replace `client`'s response with `document` (the runner's transitions); whether it
        was kept (False: larger than `responses.max_stored_bytes` or the store's room)."""
        data = document.SerializeToString()
        if len(data) > self._config.max_stored_bytes:
            return False
        name = response_name(client, document.id)
        kept = await self._store.put_document(name, data, self._kept_s(document))
        return kept is PutResult.KEPT

    def _kept_s(self, document: pb.StoredResponse) -> float:
        """How long `document` is kept: `store_ttl_s` from its end, and while it runs as long as
        it may run, plus that (as its events are: `StreamLog`). Kept `store_ttl_s` from its
        start, a run longer than that (`background_timeout_s` may be) vanished under it: its
        pollers read 404, and it could be neither cancelled nor deleted while it ran on."""
        config = self._config
        if document.background_status in RUNNING:
            return config.background_timeout_s + config.store_ttl_s
        return config.store_ttl_s

    async def kept_events(self, client: str, writer: StreamWriter) -> None:
        """A streamed response ended: its events, kept as long as it is, count towards the
        client's `responses.client_stored_bytes` as the response does."""
        if writer.written:
            await self._stored.charge(client, writer.written)

    async def forget(self, client: str, response_id: str) -> None:
        """Delete `client`'s response again (a runner stopped by its deletion, which may have
        written it meanwhile). Once more, so during a store outage (the response deleted from
        local state, or the delete refused before this) what the shared store may hold is left
        to the runner's end mark `deleted`, not raised over a delete that was done."""
        with _left_in_an_outage(response_id, "its document"):
            await self._store.delete_document(response_name(client, response_id))
        with _left_in_an_outage(response_id, "its events"):
            await self.streams.forget(client, response_id)

    async def beat(self, jobs: Sequence[JobId]) -> None:
        """Renew the heartbeat of each of `jobs` (together: one round trip on Redis)."""
        ttl_s = self._config.background_heartbeat_s
        await asyncio.gather(
            *(self._store.set_value(self._beat(c, i), "1", ttl_s) for c, i in jobs)
        )

    async def end(self, client: str, response_id: str, mark: bytes) -> bytes:
        """Write the response's end mark unless one is there: the mark in force (`mark` when
        this call wrote it)."""
        name = self._end(client, response_id)
        result = await self._store.put_document(name, mark, self._mark_ttl_s, only_new=True)
        if result is not PutResult.EXISTS:
            return mark
        (found,) = await self._store.get_documents([name])
        return found if found is not None else mark

    async def deleted(self, client: str, response_id: str) -> None:
        """Mark the response deleted whatever mark it has: a runner that wrote `done` first
        finds it once its answer is written (`_finish`), and takes the answer back."""
        name = self._end(client, response_id)
        await self._store.put_document(name, DELETED, self._mark_ttl_s)

    async def marks(self, jobs: Sequence[JobId]) -> list[bytes | None]:
        """The end mark of each of `jobs` (None: none yet), in one read."""
        return await self._store.get_documents([self._end(c, i) for c, i in jobs])

    def _end(self, client: str, job_id: str) -> str:
        return f"{self._kind}-end:" + response_name(client, job_id)

    def _beat(self, client: str, job_id: str) -> str:
        return f"{self._kind}-beat:" + client_scoped(client, job_id)

    async def resolve(self, client: str, found: Sequence[pb.StoredResponse]) -> None:
        """Rewrite in place, as a reader must see them, the running responses of `found` that
        were cancelled (their runner has not written it yet) or whose replica stopped beating
        (failed)."""
        running = [r for r in found if r.background_status in RUNNING]
        if not running:
            return
        marks = await self._store.get_documents([self._end(client, r.id) for r in running])
        beats = await self._store.get_values([self._beat(client, r.id) for r in running])
        for response, mark, beat in zip(running, marks, beats, strict=True):
            if mark == CANCELLED:
                settle(response, background_cancelled(orjson.loads(response.response_json)))
            elif beat is None:
                shown = orjson.loads(response.response_json)
                settle(response, background_failed(shown, "server_error", STOPPED_MESSAGE))


def settle(document: pb.StoredResponse, response: dict[str, object]) -> None:
    """`document` now holding `response` (its status too)."""
    document.response_json = orjson.dumps(response).decode()
    document.background_status = str(response["status"])
