"""AdminService.ListClients: each configured client (app) as an operator asks about it.

Which clients exist, what they may call and use, their limits, and where they stand: the current
minute against rpm / tpm, each token and money budget's period, the bytes of stored responses,
cached answers and conversations against their quotas. The figures are the ones the limits
decide on, read from the state store (so the same from every replica on Redis) through the
modules that own them, in two store calls for all clients: one `read` of the rate windows and
open streams, one `read_buckets` of the budgets and quotas (after the issued keys' log is read,
as ListClientKeys reads it). Nothing here names a key or a key's
hash: its keys by fingerprint (and an issued key's label).
"""

from __future__ import annotations

import asyncio
import contextlib

from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service.auth import (
    ANONYMOUS,
    Budgets,
    BudgetStanding,
    Caller,
    CallerLimits,
    LimitStanding,
)
from router_service.runtime import Runtime
from router_service.server._calls import owner_name
from router_service.server._client_keys import client_keys
from router_service.state import QuotaReading, QuotaStanding, StoreUnavailableError

__all__ = ["list_clients"]


async def list_clients(runtime: Runtime) -> pb.ListClientsResponse:
    """The configured clients in config order, then `anonymous` when auth is open."""
    config = runtime.config
    callers = [Caller.from_config(client) for client in config.auth.clients]
    # Issued keys as the store has them now, as ListClientKeys reads them (not as this replica's
    # follower last heard: a lost notice would list a revoked key on one replica only).
    with contextlib.suppress(StoreUnavailableError):  # Redis lost: the ones known here
        await runtime.issued_keys.refresh()
    keys = [client_keys(runtime, client) for client in config.auth.clients]
    if config.auth.open:
        callers.append(ANONYMOUS)
    owners = [owner_name(caller) for caller in callers]  # whose entries the calls count
    budgets = Budgets(runtime.store, runtime.clock).reading(callers)
    stored = runtime.responses.quota_reading(owners if config.responses.store else [])
    cached = runtime.cache.quota_reading(owners if config.cache.enabled else [])
    conversed = runtime.conversations.quota_reading(owners)
    quotas = [budgets.names, stored.names, cached.names, conversed.names]
    # Started together: on Redis the two reads share one round trip (the client pipelines them).
    limits, found = await asyncio.gather(
        CallerLimits(runtime.store).standing(callers),
        runtime.store.read_buckets([name for names in quotas for name in names]),
    )
    spent: dict[str, list[BudgetStanding]] = {}
    for standing in budgets.standing(found[: len(budgets.names)]):
        spent.setdefault(standing.client, []).append(standing)
    found = found[len(budgets.names) :]
    stored_bytes = _standing(stored, found[: len(stored.names)], len(callers))
    found = found[len(stored.names) :]
    cached_bytes = _standing(cached, found[: len(cached.names)], len(callers))
    conversation_bytes = _standing(conversed, found[len(cached.names) :], len(callers))
    response = pb.ListClientsResponse(
        clients=[
            _status(
                caller,
                limit,
                [] if caller.anonymous else spent.get(caller.name, []),
                stored=_bytes(kept),
                cached=_bytes(answers),
                conversations=_bytes(written),
            )
            for caller, limit, kept, answers, written in zip(
                callers, limits, stored_bytes, cached_bytes, conversation_bytes, strict=True
            )
        ]
    )
    for status, its_keys in zip(response.clients, keys, strict=False):  # anonymous: none
        status.keys.extend(its_keys)
    return response


def _standing(
    reading: QuotaReading, found: list[dict[int, dict[str, float]]], count: int
) -> list[QuotaStanding | None]:
    """Each client's standing in one quota; None for all when it is off (nothing was read)."""
    return list(reading.standing(found)) if reading.names else [None] * count


def _bytes(standing: QuotaStanding | None) -> pb.ByteQuotaStatus | None:
    if standing is None:
        return None
    return pb.ByteQuotaStatus(
        used=standing.used, quota=standing.quota, resets_unix=standing.resets_unix
    )


def _status(
    caller: Caller,
    limit: LimitStanding,
    budgets: list[BudgetStanding],
    *,
    stored: pb.ByteQuotaStatus | None,
    cached: pb.ByteQuotaStatus | None,
    conversations: pb.ByteQuotaStatus | None,
) -> pb.ClientStatus:
    return pb.ClientStatus(
        name=caller.name,
        scopes=sorted(caller.scopes),
        models=list(caller.models),
        rpm=caller.rpm,
        tpm=caller.tpm,
        max_concurrent_streams=caller.max_concurrent_streams,
        minute_requests=limit.requests,
        minute_tokens=limit.tokens,
        open_streams=limit.streams,
        budgets=[
            pb.ClientBudget(
                period=b.period, limit=int(b.limit), used=int(b.used), resets_unix=b.resets_unix
            )
            for b in budgets
            if b.unit == "tokens"
        ],
        spend_budgets=[
            pb.ClientSpendBudget(
                period=b.period, limit_usd=b.limit, used_usd=b.used, resets_unix=b.resets_unix
            )
            for b in budgets
            if b.unit == "usd"
        ],
        stored_responses=stored,
        cached_answers=cached,
        conversations=conversations,
        anonymous=caller.anonymous,
    )
