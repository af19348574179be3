"""AdminService: key pools as an operator sees them (fingerprints only), the replica, clients
and their issued keys."""

from __future__ import annotations

import grpc

from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service._ids import looked_up_id
from router_service._masking import masking, without_digests
from router_service.auth import current_caller
from router_service.errors import InvalidRequestError, KeyNotFoundError
from router_service.keys import KeyPool, KeySnapshot, UpstreamKey
from router_service.runtime import Runtime
from router_service.server._answer_audit import audited_change
from router_service.server._client_keys import (
    issue_client_key,
    list_client_keys,
    revoke_client_key,
)
from router_service.server._clients import list_clients
from router_service.server._errors import answered
from router_service.server._long_jobs import LongJobs
from router_service.server._server_info import ServingRecord, server_info
from router_service.telemetry import Redactor, config_secrets


class AdminServicer:
    def __init__(self, runtime: Runtime, record: ServingRecord, jobs: LongJobs) -> None:
        self.runtime = runtime  # replaced whole by a config reload
        self._record = record
        self._jobs = jobs

    async def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListJobsResponse:
        from router_service.server._list_jobs import list_jobs  # batches' modules: first use

        return await answered(context, list_jobs(self.runtime, self._jobs, request.limit))

    async def CancelClientBatch(
        self, request: pb.CancelClientBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelClientBatchResponse:
        from router_service.server._list_jobs import cancel_client_batch

        cancel = cancel_client_batch(self.runtime, self._jobs, request, context)
        return await answered(context, cancel)

    async def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetServerInfoResponse:
        return await answered(context, self._server_info())

    async def _server_info(self) -> pb.GetServerInfoResponse:
        return server_info(self._record, self.runtime)  # behind the boundary as a coroutine

    async def ListClients(
        self, request: pb.ListClientsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListClientsResponse:
        return await answered(context, list_clients(self.runtime))

    async def IssueClientKey(
        self, request: pb.IssueClientKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.IssueClientKeyResponse:
        return await answered(context, issue_client_key(self.runtime, request, context))

    async def ListClientKeys(
        self, request: pb.ListClientKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListClientKeysResponse:
        return await answered(context, list_client_keys(self.runtime, request))

    async def RevokeClientKey(
        self, request: pb.RevokeClientKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RevokeClientKeyResponse:
        return await answered(context, revoke_client_key(self.runtime, request, context))

    async def ListKeys(
        self, request: pb.ListKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListKeysResponse:
        return await answered(context, self._list_keys(request.provider))

    async def _list_keys(self, provider: str) -> pb.ListKeysResponse:
        """Every pool's keys, or the named provider's; one it does not have is NOT_FOUND, as
        SetKeyEnabled's (an empty list read as a provider whose keys all went away)."""
        pools = self.runtime.pools
        if provider and provider not in pools:
            raise KeyNotFoundError(None)  # never echoed: a key may have been pasted there
        shown = [pools[provider]] if provider else list(pools.values())
        now = self.runtime.clock.now()
        keys = [_status(snap, now) for pool in shown for snap in await pool.snapshot()]
        return pb.ListKeysResponse(keys=keys)

    async def SetKeyEnabled(
        self, request: pb.SetKeyEnabledRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetKeyEnabledResponse:
        return await answered(context, self._set_key_enabled(request, context))

    async def _set_key_enabled(
        self, request: pb.SetKeyEnabledRequest, call: grpc.aio.ServicerContext
    ) -> pb.SetKeyEnabledResponse:
        pool, key = self._key_named(request.provider, request.fingerprint)
        caller = current_caller()
        # A leaked key's disable may quote it: no configured secret is kept, shown or logged,
        # nor anything shaped like a key (one not configured: the account's new key), as the
        # log's redactor masks it; nor a client's key configured by its hash alone, which no
        # pattern knows (`without_digests`), as IssueClientKey refuses a label holding one.
        config = self.runtime.config
        masked = masking(config_secrets(config))(request.reason)
        note = Redactor()(without_digests(masked, config.auth.key_digests))
        by = caller.name if caller is not None else ""
        await pool.set_enabled(key, request.enabled, note=note, by=by)
        # Which key (by fingerprint), and why: quoted and bounded, whatever was typed.
        done = "enabled" if request.enabled else "disabled"
        why = f": {note[:200]!r}" if note else " (no reason given)"
        reason = f"{done} key {key.fingerprint} of provider {pool.provider}{why}"
        method = "/switchboard.v1.AdminService/SetKeyEnabled"
        audited_change(call, method, reason, key_fingerprint=key.fingerprint)
        snap = next(s for s in await pool.snapshot() if s.key is key)
        status = _status(snap, self.runtime.clock.now())
        return pb.SetKeyEnabledResponse(key=status, queued=self._store_lost())

    def _key_named(self, provider: str, fingerprint: str) -> tuple[KeyPool, UpstreamKey]:
        """The pool and key a SetKeyEnabled names; without a provider, the one pool holding
        that fingerprint. Errors never echo what was asked for (KeyNotFoundError); a
        fingerprint longer than any (`looked_up_id`) is one no key has."""
        pools = self.runtime.pools
        # Unknown provider: said so; else no such key in it (or in any, none named).
        missing = KeyNotFoundError(None if provider and provider not in pools else provider)
        looked_up_id(fingerprint, "fingerprint", "key fingerprint", lambda _shown: missing)
        if provider:
            pool = pools.get(provider)
            key = pool.find(fingerprint) if pool is not None else None
            if pool is None or key is None:
                raise missing
            return pool, key
        found = [(p, k) for p in pools.values() if (k := p.find(fingerprint)) is not None]
        if not found:
            raise missing
        if len(found) > 1:  # one secret configured under several providers
            names = ", ".join(f"`{p.provider}`" for p, _ in found)
            raise InvalidRequestError(
                f"Providers {names} each have a key with that fingerprint: name one.",
                param="provider",
            )
        return found[0]

    async def PurgeCache(
        self, request: pb.PurgeCacheRequest, context: grpc.aio.ServicerContext
    ) -> pb.PurgeCacheResponse:
        await answered(context, self.runtime.cache.purge(request.model))
        # Which model's answers (a known one: an unknown name was refused above, never repeated).
        which = f"model {request.model!r}" if request.model else "every model"
        method = "/switchboard.v1.AdminService/PurgeCache"
        audited_change(context, method, f"purged the response cache of {which}")
        return pb.PurgeCacheResponse(queued=self._store_lost())

    def _store_lost(self) -> bool:
        """The write just made could not reach the shared store: the other replicas see it
        once the store answers again (the resilient store queued it for its replay)."""
        return bool(self.runtime.store.outage_counts().get("degraded"))

    async def GetRoutingStats(
        self, request: pb.GetRoutingStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRoutingStatsResponse:
        return await answered(context, self._routing_stats())

    async def _routing_stats(self) -> pb.GetRoutingStatsResponse:
        runtime = self.runtime
        planner = runtime.planner
        shown = planner.measured
        await runtime.stats.flush()  # this replica's results too, for every replica's view
        stats = await runtime.stats.read([d.health_name for d in shown])
        cooldowns = await runtime.store.deadlines([d.cooldown_name for d in shown])
        response = pb.GetRoutingStatsResponse()
        for deployment, st, until in zip(shown, stats, cooldowns, strict=True):
            response.deployments.add(
                deployment=st.deployment,
                provider=deployment.provider,
                alpha=st.alpha,
                beta=st.beta,
                success_mean=st.mean,
                successes=st.successes,
                failures=st.failures,
                latency_ewma_ms=(st.latency_ewma_s or 0.0) * 1000.0,
                cooldown_until_unix=until,
                stream_options_refused=deployment.adapter.refused_stream_options(
                    deployment.upstream_model
                ),
            )
        for group in planner.groups.values():
            response.groups.add(
                name=group.name,
                strategy=group.strategy,
                deployments=[d.name for d in group.members],
                groups=list(group.member_groups),
            )
        for name, adapter in runtime.adapters.items():
            banned, skipped = await runtime.sessions.exclusions(name)
            response.sessions.add(
                provider=name,
                thread_protection=adapter.config.thread_protection,
                active=await runtime.sessions.active(name),
                banned_sessions=banned,
                skipped=skipped,
            )
        return response


def _status(snap: KeySnapshot, now: float) -> pb.KeyStatus:
    if snap.disabled_until > now:
        state = pb.KEY_STATE_DISABLED
    elif snap.cooling:
        state = pb.KEY_STATE_COOLING
    else:
        state = pb.KEY_STATE_ACTIVE
    return pb.KeyStatus(
        fingerprint=snap.key.fingerprint,
        provider=snap.key.provider,
        state=state,
        in_flight=snap.in_flight,
        max_in_flight=snap.key.max_in_flight or 0,
        until_unix=snap.disabled_until,
        last_outcome=snap.last_outcome,
        cooling_models=snap.cooling,
        disabled_reason=snap.disabled_reason,
        disabled_note=snap.disabled_note,
        disabled_by=snap.disabled_by,
    )
