"""AdminService.ListClients: each configured client (app) as an operator asks about it.

Which clients exist, what they may call and use, their limits, and where they stand: the current
minute against rpm / tpm, each token budget's period, their stored-response bytes against the
quota. The figures are the ones the limits decide on, read from the state store (so the same from
every replica on Redis) by the modules that own them, in two store calls for all clients: one
`read` of the rate windows and open streams, one `read_buckets` of the budgets and quotas.
Nothing here names a key or a key's hash.
"""

from __future__ import annotations

import asyncio

from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service.auth import (
    ANONYMOUS,
    BudgetStanding,
    Caller,
    CallerLimits,
    LimitStanding,
    TokenBudgets,
)
from router_service.responses import QuotaStanding
from router_service.runtime import Runtime
from router_service.server._router_servicer import owner_name

__all__ = ["list_clients"]


async def list_clients(runtime: Runtime) -> pb.ListClientsResponse:
    """The configured clients in config order, then `anonymous` when auth is open."""
    auth = runtime.config.auth
    callers = [Caller.from_config(client) for client in auth.clients]
    if auth.open:
        callers.append(ANONYMOUS)
    budgets = TokenBudgets(runtime.store, runtime.clock).reading(callers)
    quotas = runtime.responses.quota_reading([owner_name(caller) for caller in callers])
    # Started together: on Redis the two reads share one round trip (the client pipelines them).
    limits, found = await asyncio.gather(
        CallerLimits(runtime.store).standing(callers),
        runtime.store.read_buckets([*budgets.names, *quotas.names]),
    )
    spent: dict[str, list[BudgetStanding]] = {}
    for standing in budgets.standing(found[: len(budgets.names)]):
        spent.setdefault(standing.client, []).append(standing)
    stored = quotas.standing(found[len(budgets.names) :])
    return pb.ListClientsResponse(
        clients=[
            _status(caller, limit, [] if caller.anonymous else spent.get(caller.name, []), quota)
            for caller, limit, quota in zip(callers, limits, stored, strict=True)
        ]
    )


def _status(
    caller: Caller, limit: LimitStanding, budgets: list[BudgetStanding], quota: QuotaStanding
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
            pb.ClientBudget(period=b.period, limit=b.limit, used=b.used, resets_unix=b.resets_unix)
            for b in budgets
        ],
        stored_bytes=quota.used,
        stored_bytes_quota=quota.quota,
        stored_bytes_resets_unix=quota.resets_unix,
        anonymous=caller.anonymous,
    )
