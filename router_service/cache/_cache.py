"""ResponseCache: answers kept in the state store (`cache:`), served again to the same request.

One document per answer (`StateStore.put_document`: memory, or Redis shared by the replicas),
for `cache.ttl_s`, named by the request's key (`_keys.py`). A lookup is one read; keeping an
answer is done after it has left (the runtime's Afterwork, as a lease's release), held to the
client's byte quota (`cache.client_bytes` per `ttl_s`) and to `cache.max_entry_bytes`.

Only complete answers are kept: a unary answer, a stream that ended with its summary, an
embeddings result. An error, a stream its caller left or one cut short is never kept.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, nullcontext
from typing import TypeVar

from google.protobuf.message import DecodeError

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.cache._cluster import ClusterFlights
from router_service.cache._cluster_stream import ClusterStreams
from router_service.cache._flights import Flight, Flights
from router_service.cache._keys import Kind, cache_key, document_name, quota_name
from router_service.cache._stream_flights import SlotRenewal, StreamFlights
from router_service.clock import Clock
from router_service.config import CacheConfig
from router_service.engine import Afterwork, RequestContext, SlotOwner
from router_service.errors import ModelNotFoundError
from router_service.state import ByteQuota, Landing, PutResult, QuotaReading, StateStore

__all__ = ["ENTRY_BYTES", "CacheLookup", "ResponseCache"]

log = logging.getLogger("switchboard.cache")

HIT = routing_pb2.CACHE_STATUS_HIT
MISS = routing_pb2.CACHE_STATUS_MISS
BYPASS = routing_pb2.CACHE_STATUS_BYPASS
Answer = TypeVar("Answer", pb.ChatResponse, pb.EmbedResponse)
# A purge sets a new generation: of one model (`cache-gen:<model>`) or of all.
_GENERATION = "cache-gen:"
_GENERATION_ALL = "cache-gen-all"
_DAY_S = 86_400.0
# What an entry costs its client's quota besides its bytes (its key and the store's entry).
ENTRY_BYTES = 512
_RESULTS = {HIT: "hit", MISS: "miss", BYPASS: "bypass"}


class ResponseCache:
    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        config: CacheConfig,
        afterwork: Afterwork,
        *,
        models: frozenset[str],
        slots: SlotRenewal,
        routes: Mapping[str, str] | None = None,
    ) -> None:
        """`models`: every name a caller may send; the cache applies to `config.models` of
        them, or to all when that is empty (never to an unknown name, which is refused).
        `slots`: what renews the stream slots of the callers reading a shared stream.
        `routes`: each name's `route_digest`, part of its answers' keys."""
        self._store = store
        self._clock = clock
        self.config = config
        self._afterwork = afterwork
        self.slots = slots
        self._models = frozenset(config.models) or models
        self._known = models
        self._routes = routes or {}
        self.flights = Flights(clock)
        # Identical streaming misses (`_stream_flights.py`).
        self.stream_flights = StreamFlights(clock)
        # Misses on every replica of the store wait for one (`_cluster.py`): opt-in.
        self.cluster = (
            ClusterFlights(store, afterwork, config.flight_lease_s, clock, slots.renewer)
            if config.coalesce == "cluster"
            else None
        )
        # Identical streaming misses on every replica share one stream (`_cluster_stream.py`).
        self.cluster_streams = (
            None if self.cluster is None else ClusterStreams(store, afterwork, self.cluster, config)
        )
        self._quota = ByteQuota(
            store, clock, limit_bytes=config.client_bytes, period_s=config.ttl_s
        )

    def quota_reading(self, clients: Sequence[str]) -> QuotaReading:
        """What reading the cache quota of `clients` takes (their current period, now); `""` is
        open mode's callers without a key, as the calls name them."""
        return self._quota.reading([quota_name(client) for client in clients])

    def lookup(
        self,
        kind: Kind,
        ctx: RequestContext,
        params: object,
        mode: routing_pb2.CacheMode.ValueType = routing_pb2.CACHE_MODE_UNSPECIFIED,
        *,
        screened_by: str = "",
    ) -> CacheLookup | None:
        """What the cache does for one request; None (and no key made) when it does not apply:
        turned off, a model not listed, or the caller's mode OFF (the common case costs a
        test, not an object). `screened_by`: what names the response-side guardrails that
        screen the answer (AnswerGuard.signature), part of the key: an answer kept under
        other rules (before a reload, by another replica) is never served."""
        config = self.config
        if (
            not config.enabled
            or mode == routing_pb2.CACHE_MODE_OFF
            or ctx.requested_model not in self._models
        ):
            return None
        status = BYPASS if mode == routing_pb2.CACHE_MODE_BYPASS else MISS
        return CacheLookup(self, kind, ctx, params, status, screened_by)

    async def generation(self, model: str) -> str:
        """What the purges of `model` and of every model make of its answers' keys (values:
        read through the read cache, so on Redis a replica sees another's purge at once and
        pays no round trip otherwise), and the route that answers it (`route_digest`)."""
        everything, one = await self._store.get_values([_GENERATION_ALL, _GENERATION + model])
        return f"{everything or ''}.{one or ''}.{self._routes.get(model, '')}"

    async def purge(self, model: str = "") -> None:
        """Forget the answers of `model` ("": of every model), on every replica of the store:
        a new generation. What was kept expires by its TTL, never read again; the generation
        outlives it (at least a day), else the answers kept before the first purge could be.
        An unknown model is ModelNotFoundError, which does not repeat it (a key pasted there)."""
        if model and model not in self._known:
            raise ModelNotFoundError(None)
        name = _GENERATION + model if model else _GENERATION_ALL
        ttl_s = max(2 * self.config.ttl_s, _DAY_S)
        await self._store.set_value(name, secrets.token_hex(8), ttl_s)

    async def read(self, client: str, key: str) -> pb.CachedAnswer | None:
        (data,) = await self._store.get_documents([document_name(client, key)])
        if data is None:
            return None
        try:
            answer = pb.CachedAnswer.FromString(data)
        except DecodeError:  # not ours (a foreign writer under the prefix): as good as absent
            return None
        if answer.key != key or self.age_s(answer) >= self.config.ttl_s:
            return None  # another's; or kept for longer than a reload has since shortened TTL to
        return answer

    async def keep(self, client: str, answer: pb.CachedAnswer, lease: str = "") -> None:
        """Keep `answer` after the caller has its own (Afterwork: inline on the memory store),
        then land the cluster flight `lease` leads (KEPT once written, else EMPTY)."""
        answer.stored_unix = self._clock.now()
        data = answer.SerializeToString()
        if len(data) > self.config.max_entry_bytes:
            if lease and self.cluster is not None:
                await self.cluster.land(document_name(client, answer.key), lease, Landing.EMPTY)
            return
        stack = AsyncExitStack()
        stack.push_async_callback(self._write, client, answer.key, data, lease)
        await self._afterwork.close(stack)

    async def _write(self, client: str, key: str, data: bytes, lease: str) -> None:
        name, kept = document_name(client, key), False
        quota, size = quota_name(client), len(data) + ENTRY_BYTES
        try:
            bucket = await self._quota.room(quota, size)
            if bucket is None:
                log.info("a client's cache quota is used up this period: an answer was not kept")
                return
            put = await self._store.put_document(name, data, self.config.ttl_s)
            kept = put is PutResult.KEPT
            if kept:  # counted once kept: one the store had no room for counts nothing
                await self._quota.charge(quota, bucket, size)
        finally:
            if lease:  # the followers on other replicas read it now (or ask themselves)
                await self._store.land_flight(name, lease, Landing.KEPT if kept else Landing.EMPTY)

    def age_s(self, answer: pb.CachedAnswer) -> float:
        return max(0.0, self._clock.now() - answer.stored_unix)


class CacheLookup:
    """One request's use of the cache: `find` the kept answer (a HIT), else `keep` the fresh
    one. `status` is what RouteInfo.cache tells the caller."""

    __slots__ = ("_cache", "_ctx", "_lease", "_params", "_screened_by", "key", "kind", "status")

    def __init__(
        self,
        cache: ResponseCache,
        kind: Kind,
        ctx: RequestContext,
        params: object,
        status: routing_pb2.CacheStatus.ValueType,
        screened_by: str = "",
    ) -> None:
        self._cache = cache
        self._screened_by = screened_by
        self.kind = kind  # also the CachedAnswer field its answer is kept in
        self._ctx = ctx
        self._params = params
        self.key = ""  # made on first use: it needs the model's generation (a read)
        self.status = status
        self._lease = ""  # the cluster flight this request leads, if it does

    async def _keyed(self) -> str:
        if not self.key:
            generation = await self._cache.generation(self._ctx.requested_model)
            if self._screened_by:
                generation += f"|answers:{self._screened_by}"
            self.key = cache_key(self.kind, self._ctx.client, self._params, generation)  # type: ignore[arg-type]
        return self.key

    @property
    def max_entry_bytes(self) -> int:
        return self._cache.config.max_entry_bytes

    async def find(self) -> pb.CachedAnswer | None:
        """The kept answer (status HIT), or None (to be asked upstream and kept)."""
        if self.status != MISS:
            return None
        answer = await self._cache.read(self._ctx.client, await self._keyed())
        if answer is None or answer.WhichOneof("answer") != self.kind:
            return None
        self.status = HIT
        return answer

    @property
    def stream_flights(self) -> StreamFlights:
        return self._cache.stream_flights

    @property
    def cluster_streams(self) -> ClusterStreams | None:
        return self._cache.cluster_streams

    @property
    def slot_renewal(self) -> SlotRenewal:
        return self._cache.slots

    @property
    def stream_slot(self) -> SlotOwner | None:
        """Its caller's stream slot, renewed by its attempt's hold (None: none, or renewed
        while it reads a shared stream instead)."""
        return self._ctx.stream_slot

    @stream_slot.setter
    def stream_slot(self, slot: SlotOwner | None) -> None:
        self._ctx.stream_slot = slot

    @property
    def remaining_s(self) -> float | None:
        """What its call's deadline leaves (None: no deadline)."""
        return self._ctx.remaining()

    @property
    def result(self) -> str:
        """What the cache did, in telemetry's words: "hit", "miss" or "bypass"."""
        return _RESULTS[self.status]

    def served(self, answer: pb.CachedAnswer, route: routing_pb2.RouteInfo) -> None:
        """Make a kept answer's route this request's: the deployment that answered then, no
        attempts now, this request's model name and session, HIT and the answer's age."""
        self.shared(route, self._cache.age_s(answer))

    def shared(self, route: routing_pb2.RouteInfo, age_s: float = 0.0) -> None:
        """Make another request's route this request's (a HIT of `age_s`): a kept answer's, or
        the leader's of a stream flight this request follows."""
        del route.attempts[:]
        route.requested_model = self._ctx.requested_model
        route.session_id = self._ctx.session_id
        route.cache = HIT
        route.cache_age_s = age_s
        route.ClearField("cost_usd")  # no upstream call: this request cost nothing
        route.answer_guardrails[:] = self._ctx.answer_guardrails  # as kept: this call's own

    def mark(self, route: routing_pb2.RouteInfo) -> None:
        """Tell a fresh answer's route what the cache did (MISS, BYPASS; nothing when off)."""
        route.cache = self.status

    async def keep(self, answer: pb.CachedAnswer) -> None:
        """Keep a fresh, complete answer (the route inside without this request's attempts,
        model name and session: a later HIT sets its own)."""
        if self.status not in (MISS, BYPASS):
            return
        answer.key = await self._keyed()
        kept = answer.stream.summary if self.kind == "stream" else getattr(answer, self.kind)
        _strip(kept.route)
        await self._cache.keep(self._ctx.client, answer, self._lease)

    async def answer(self, fresh: Callable[[], Awaitable[Answer]]) -> Answer:
        """A unary answer: the kept one (HIT), else the one a concurrent identical miss of this
        replica is getting (HIT: `_flights.py`), else with `coalesce: cluster` the one another
        replica's miss is getting (HIT: `_cluster.py`), else `fresh()`'s, kept (MISS, BYPASS)."""
        kept = await self.find()
        if kept is None and self.status == MISS:
            kept = await self._cache.flights.follow(self.flight_name, self._ctx.remaining())
            if kept is not None:
                self.status = HIT
        if kept is None:
            flight = (
                self._cache.flights.lead(self.flight_name) if self.status == MISS else nullcontext()
            )
            with flight as leading:
                kept = await self._board(leading)
                if kept is None:
                    return await self._ask(fresh, leading)
        found: Answer = getattr(kept, self.kind)
        response = type(found)()
        response.CopyFrom(found)  # a leader's answer is every follower's: each its own
        self.served(kept, response.route)
        return response

    async def _board(self, leading: Flight | None) -> pb.CachedAnswer | None:
        """This replica's leader of a flight, with `coalesce: cluster`: the answer another
        replica's leader kept (HIT; this replica's followers get it too), or None to ask
        upstream (leading the cluster's flight when it could take it)."""
        cluster = self._cache.cluster
        if leading is None or cluster is None:
            return None
        boarding = await cluster.board(self.flight_name, self._ctx.remaining(), self.find)
        self._lease = boarding.lease
        if boarding.answer is not None:  # `find` made it a HIT
            leading.land(boarding.answer)
        return boarding.answer

    async def _ask(self, fresh: Callable[[], Awaitable[Answer]], leading: Flight | None) -> Answer:
        """`fresh()`'s answer, kept, and handed to this replica's followers."""
        cluster = self._cache.cluster
        try:
            if self._lease and cluster is not None:  # renewed while it runs (`_cluster.py`)
                async with cluster.leading(self.flight_name, self._lease, self._ctx.remaining()):
                    response = await fresh()
            else:
                response = await fresh()
        except BaseException:  # failed, or its caller left: the other replicas ask themselves
            if self._lease and cluster is not None:
                await cluster.land(self.flight_name, self._lease, Landing.EMPTY)
            raise
        self.mark(response.route)
        answer = pb.CachedAnswer()
        getattr(answer, self.kind).CopyFrom(response)  # the caller's own stays as it is
        await self.keep(answer)
        if leading is not None:
            leading.land(answer)
        return response

    @property
    def flight_name(self) -> str:
        """What its flights are named by (its key made: after `find`)."""
        return document_name(self._ctx.client, self.key)


def _strip(route: routing_pb2.RouteInfo) -> None:
    del route.attempts[:]
    route.ClearField("requested_model")
    route.ClearField("session_id")
    route.ClearField("cache")
    route.ClearField("cache_age_s")
    route.ClearField("cost_usd")
