"""Runtime: everything the router builds from its config, with one explicit lifetime."""

from __future__ import annotations

import contextlib
import dataclasses
from functools import cached_property
from typing import TYPE_CHECKING

import httpx

from clients.switchboard.v1 import chat_pb2
from router_service.auth import Gate, IssuedKeys
from router_service.cache import ResponseCache, SlotRenewal, route_digest
from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.config import DeploymentRef, PriceConfig, SwitchboardConfig
from router_service.engine import (
    Afterwork,
    AttemptRunner,
    Deployment,
    Executor,
    Group,
    HoldRenewer,
    Planner,
    RouteLeases,
)
from router_service.errors import ModelNotFoundError
from router_service.guardrails import Guardrails
from router_service.keys import KeyPool, KeyProber, ProbeFn, UpstreamKey, take_over
from router_service.providers import ADAPTERS, ChatCall, ProviderAdapter, create_http_client
from router_service.providers._reasoning_models import takes_reasoning
from router_service.providers._responses_map import MIN_OUTPUT_TOKENS
from router_service.providers._responses_models import upstream_api
from router_service.routing import RoutingStats
from router_service.sessions import LocalMarks, SessionState
from router_service.state import MemoryStateStore, StateStore, StoreUnavailableError, open_store
from router_service.telemetry import StateGauges

if TYPE_CHECKING:
    from router_service.batches import BatchRecords, StoredFiles
    from router_service.responses import BackgroundRecords, Conversations, StoredResponses


class Runtime:
    """Adapters, key pools, state and the engine for one config. Build with `create`, end with
    `aclose` (idempotent); the shared HTTP client is closed only if the runtime created it."""

    def __init__(
        self,
        config: SwitchboardConfig,
        *,
        clock: Clock,
        store: StateStore,
        http: httpx.AsyncClient,
        owns_http: bool,
        session_marks: LocalMarks | None = None,
        stats: RoutingStats | None = None,
        afterwork: Afterwork | None = None,
        renewer: HoldRenewer | None = None,
        issued_keys: IssuedKeys | None = None,  # a mirror shared with successors, as the store
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.http = http
        self._owns_http = owns_http
        self._owns_store = True
        self._hands_over_stats = False
        self._closed = False
        self.adapters, self.pools = _build_providers(config, http, clock, store)
        self.stats = stats or RoutingStats(store, clock, config.routing)
        # Marks nobody decides on stay in this process when state is shared (SessionState).
        if session_marks is None and not isinstance(store, MemoryStateStore):
            session_marks = LocalMarks(clock)
        self._session_marks = session_marks
        self.sessions = SessionState(store, clock, config.sessions, marks=session_marks)
        deployments, groups = _build_groups(config, self.adapters, self.pools)
        self.planner = Planner(
            deployments,
            groups,
            store=store,
            clock=clock,
            stats=self.stats,
            sessions=self.sessions,
            max_cooldown_wait_s=config.routing.max_cooldown_wait_s,
        )
        # One renewer of open streams' holds per lineage, like the afterwork: a reload's
        # successor renews the streams still open on this config, and its owner stops it.
        renewer = renewer or HoldRenewer(clock, together=store.batches_concurrent_calls)
        self.runner = AttemptRunner(
            store, clock, config.cooldowns, self.sessions, self.stats, renewer
        )
        # Shared with successors, like the store it writes to: drained by the last owner.
        self.afterwork = afterwork or Afterwork(store)
        self.executor = Executor(self.planner, self.runner, clock, config.streams, self.afterwork)
        self.route_leases = RouteLeases(self.planner, self.runner, clock, config.route_lease_ttl_s)
        self.cache = self._response_cache(renewer)
        self.guardrails = Guardrails(config.guardrails)  # the auth Gate's and the answers'
        self.issued_keys = (issued_keys or IssuedKeys(store, clock)).configured(config.auth)
        self.prober = KeyProber(
            self.pools,
            {name: self._probe_fn(adapter) for name, adapter in self.adapters.items()},
            clock=clock,
            config=config.key_health,
        )
        self.gauges = StateGauges(self, config.telemetry.state_interval_s)
        self.renamed: dict[str, str] = {}  # a reload's providers renamed: new -> old name

    def _response_cache(self, renewer: HoldRenewer) -> ResponseCache:
        """The response cache, for every name a caller may send, its answers kept per route;
        the stream slots of the callers reading a stream it shares renewed by the lineage's
        renewer, as a stream's."""
        config, planner = self.config, self.planner
        routes = {name: route_digest(group.members) for name, group in planner.groups.items()}
        routes |= {name: route_digest([one]) for name, one in planner.deployments.items()}
        slots = SlotRenewal(renewer, config.server.lease_ttl_s)
        return ResponseCache(
            self.store,
            self.clock,
            config.cache,
            self.afterwork,
            models=frozenset(routes),
            slots=slots,
            routes=routes,
        )

    @cached_property
    def gate(self) -> Gate:
        """The auth gate of this config, one for all it admits (the calls the interceptor lets
        in, a batch's lines): its `auth` config, its StateStore (limits shared by every replica
        on the same store), its planner (an unknown model is a 404, not a 403; the prices a
        model may be answered at, for money budgets' estimates). One: a gate made warns of the
        keys about to expire (a gate per batch warned again at each)."""
        config = self.config
        return Gate(
            config.auth,
            self.store,
            max_tokens_ceiling=config.server.max_tokens_ceiling,
            max_n=config.server.max_n,
            max_rerank_documents=config.server.max_rerank_documents,
            known_model=self._known_model,
            prices=self._prices,
            clock=self.clock,
            guardrails=self.guardrails,
            issued=self.issued_keys,
        )

    def _known_model(self, model: str) -> bool:
        try:
            self.planner.resolve(model)
        except ModelNotFoundError:
            return False
        return True

    def _prices(self, model: str) -> list[PriceConfig]:
        try:
            members = self.planner.resolve(model).members
        except ModelNotFoundError:  # PickRoute's model is checked by its handler
            return []
        return [d.price for d in members if d.price is not None]

    # What the Responses, Conversations, Files and Batch APIs keep in the state store: built,
    # their modules imported, by the first call that reads them (an idle router or a plain
    # call never does: benchmarks/README.md, "Where idle RSS goes").

    @cached_property
    def responses(self) -> StoredResponses:
        from router_service.responses import StoredResponses

        bound = self.config.server.max_message_bytes  # what one load may read
        return StoredResponses(self.store, self.clock, self.config.responses, max_load_bytes=bound)

    @cached_property
    def background(self) -> BackgroundRecords:
        from router_service.responses import BackgroundRecords

        return BackgroundRecords(self.store, self.clock, self.config.responses, self.responses)

    @cached_property
    def conversations(self) -> Conversations:
        from router_service.responses import Conversations

        bound = self.config.server.max_message_bytes
        config = self.config.conversations
        return Conversations(self.store, self.clock, config, max_load_bytes=bound)

    @cached_property
    def files(self) -> StoredFiles:
        from router_service.batches import StoredFiles

        return StoredFiles(self.store, self.clock, self.config.files)

    @cached_property
    def batches(self) -> BatchRecords:
        from router_service.batches import BatchRecords

        config = self.config
        return BatchRecords(
            self.store, self.clock, config.files, config.batches, config.responses, self.responses
        )

    def _probe_fn(self, adapter: ProviderAdapter) -> ProbeFn:
        health = self.config.key_health
        timeout = adapter.config.timeouts.first_chunk_s

        async def probe(key: UpstreamKey) -> None:
            if health.probe == "models":
                await adapter.list_models(key.secret, timeout)
                return
            model = health.probe_model or next(
                (
                    d.upstream_model
                    for d in self.planner.deployments.values()
                    if d.provider == adapter.name
                ),
                "",
            )
            api = next(
                (
                    d.api
                    for d in self.planner.deployments.values()
                    if d.provider == adapter.name and d.upstream_model == model
                ),
                upstream_api(adapter.kind, model, None),
            )
            params = chat_pb2.ChatParams(
                model=model,
                messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="ping")],
                # The Responses API refuses a `max_output_tokens` under 16.
                max_tokens=MIN_OUTPUT_TOKENS if api == "responses" else 1,
            )
            await adapter.chat(ChatCall(model, key.secret, params, timeout, api))

        return probe

    def start_background(self) -> None:
        """Start the background work (the key prober). Stopped by `aclose`."""
        self.prober.start()
        self.issued_keys.start()
        self.route_leases.start()
        self.gauges.start()  # only when metrics are on

    @classmethod
    async def create(
        cls,
        config: SwitchboardConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        store: StateStore | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> Runtime:
        """Build from `config`; the store is the one `config.state` names unless given."""
        if store is None:
            store = await open_store(config.state, clock)
        owns_http = http is None
        if http is None:
            http = create_http_client(config.http, own_spans=config.telemetry.upstream_http_spans)
        return cls(config, clock=clock, store=store, http=http, owns_http=owns_http)

    def successor(self, config: SwitchboardConfig) -> Runtime:
        """A runtime for a reloaded `config`, on this one's clock, state store, HTTP client and
        session marks, which it takes over (closing them is its job from now on); it adopts the
        PickRoute leases still out. Routing statistics carry over unless `routing:` changed.

        Calls already running keep the objects they hold (its pools, deployments, executor)
        until they end: `aclose` it once the successor serves, stopping its background work only
        (the successor's gauges show its removed keys while held); what pools learned is stored."""
        same_routing = config.routing.statistics() == self.config.routing.statistics()
        new = Runtime(
            config,
            clock=self.clock,
            store=self.store,
            http=self.http,
            owns_http=self._owns_http,
            session_marks=self._session_marks,
            stats=self.stats if same_routing else None,
            afterwork=self.afterwork,
            renewer=self.runner.renewer,
            issued_keys=self.issued_keys,
        )
        new.route_leases.adopt(self.route_leases)
        # Before its prober starts; providers renamed: their store state, `_reload.carried_over`.
        new.renamed = take_over(new.pools, self.pools, config, self.config)
        new.gauges.succeed(self.gauges)
        self._owns_http = self._owns_store = False
        self._hands_over_stats = same_routing
        return new

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.prober.shutdown()
        await self.route_leases.aclose()
        await self.gauges.aclose()
        if self._owns_store:  # the afterwork goes with the store: the last releases reach it
            await self.runner.renewer.aclose()
            await self.issued_keys.aclose()
            await self.afterwork.drain()
        with contextlib.suppress(StoreUnavailableError):  # statistics are worth a try, no more
            # Statistics a successor took over are flushed only: their timer is its own now.
            await (self.stats.flush() if self._hands_over_stats else self.stats.aclose())
        if self._owns_http:
            await self.http.aclose()
        if self._owns_store:
            await self.store.aclose()


def _build_providers(
    config: SwitchboardConfig, http: httpx.AsyncClient, clock: Clock, store: StateStore
) -> tuple[dict[str, ProviderAdapter], dict[str, KeyPool]]:
    """Each provider's adapter (its wire format) and key pool."""
    adapters: dict[str, ProviderAdapter] = {}
    pools: dict[str, KeyPool] = {}
    for name, provider in config.providers.items():
        adapters[name] = ADAPTERS[provider.kind].for_provider(name, provider, http, clock)
        pools[name] = KeyPool(
            name,
            provider.keys,
            store=store,
            clock=clock,
            cooldowns=config.cooldowns,
            health=config.key_health,
            lease_ttl_s=config.server.lease_ttl_s,
        )
    return adapters, pools


def _build_groups(
    config: SwitchboardConfig,
    adapters: dict[str, ProviderAdapter],
    pools: dict[str, KeyPool],
) -> tuple[dict[str, Deployment], dict[str, Group]]:
    """Deployments (one object per provider/model, shared by every group naming it), model
    groups, and pools as groups over their member groups' deployments."""
    deployments: dict[str, Deployment] = {}
    groups: dict[str, Group] = {}
    own = config.own_settings()
    for group_name, group in config.models.items():
        members, weights = [], tuple(ref.weight for ref in group.deployments)
        for named in group.deployments:
            ref = own[named.name]
            if ref.name not in deployments:
                deployments[ref.name] = _deployment(config, ref, adapters, pools)
            members.append(deployments[ref.name])
        groups[group_name] = Group(
            group_name, group.strategy, tuple(members), weights=weights, embeddings=group.embeddings
        )
    for pool_name, pool in config.pools.items():
        seen: dict[str, tuple[Deployment, float]] = {}  # each with its first group's weight
        for member in (groups[name] for name in pool.groups):
            for deployment, weight in zip(member.members, member.weights, strict=True):
                seen.setdefault(deployment.name, (deployment, weight))
        groups[pool_name] = Group(
            pool_name,
            pool.strategy,
            tuple(deployment for deployment, _ in seen.values()),
            pool=pool_name,
            member_groups=tuple(pool.groups),
            weights=tuple(weight for _, weight in seen.values()),
            embeddings=all(groups[name].embeddings for name in pool.groups),
        )
    return deployments, groups


def _deployment(
    config: SwitchboardConfig,
    ref: DeploymentRef,
    adapters: dict[str, ProviderAdapter],
    pools: dict[str, KeyPool],
) -> Deployment:
    """The deployment `ref` names; a chat one at OpenAI itself with its `api` unset has its
    Responses API twin, called for OpenAI's hosted tools (README, Hosted tools)."""
    adapter = adapters[ref.provider]
    pools[ref.provider].serves(ref.model)  # the admin view of its keys' cooldowns for it
    deployment = Deployment(
        ref.name,
        ref.provider,
        ref.model,
        adapter,
        pools[ref.provider],
        weight=ref.weight,
        context_window=ref.context_window,
        price=config.price_of(ref),
        realtime=ref.realtime,
        reasoning=_reasoning(ref, adapter.kind),
        base_model=ref.base_model or "",
        api=upstream_api(adapter.kind, ref.base_model or ref.model, ref.api),
    )
    if ref.api is None and deployment.api == "chat" and adapter.serves_responses_api:
        twin = dataclasses.replace(deployment, api="responses", twin=True)
        return dataclasses.replace(deployment, hosted_twin=twin)
    return deployment


def _reasoning(ref: DeploymentRef, kind: str) -> bool:
    """Whether the deployment takes a reasoning knob: as configured, else as its model's name
    tells (decided here, once: its calls pay nothing for it)."""
    named = ref.base_model or ref.model
    return takes_reasoning(kind, named) if ref.reasoning is None else ref.reasoning
