"""The operator's view: `/admin` (a status page refreshed live), `/admin/api/status`,
`/admin/api/clients`, `/admin/api/jobs` and `/admin/keys` (JSON), all behind `edge.admin_token`.

The page itself is static (`admin_static/`: no data, no secrets); its script reads the token from
the URL fragment (`/admin#token=…`, never sent to a server) or a prompt, keeps it in the tab's
sessionStorage, and polls `/admin/api/status` with `authorization: Bearer <token>`.

The data comes from the router's AdminService (ListKeys, GetRoutingStats, GetServerInfo,
ListClients, ListJobs) through the app's
RouterClient. The router wants an admin-scoped client key for it: `edge.admin_router_key` when
set, else the caller's own `authorization` is forwarded (one secret for both, or an open router).
Without `edge.admin_token` every admin route is a 404.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from clients import RouterClient, RouterError
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service._throttle import KEY_THROTTLED, client_address

from ._admin_clients import clients_view
from ._admin_jobs import jobs_view
from ._errors import EdgeError, retry_after_headers
from ._json import JSONBytesResponse
from ._metadata import Metadata, forwardable, forwarded_metadata
from ._numbers import whole_number
from ._openapi import JOBS_LIMIT_PARAM, PROVIDER_PARAM
from ._state import EdgeState, edge_state

__all__ = ["router"]

router = APIRouter()

_STATIC = Path(__file__).parent / "admin_static"
_ASSETS = {"admin.js": "text/javascript", "admin.css": "text/css"}
_STATES = {
    admin_pb.KEY_STATE_ACTIVE: "active",
    admin_pb.KEY_STATE_COOLING: "cooling",
    admin_pb.KEY_STATE_DISABLED: "disabled",
}
# Past the client's retries of a read no router took (~5 s: clients/_base.py RETRY_POLICY), so a
# router down is said to be (503 `unavailable`), not a slow one's 504 "Deadline Exceeded".
_ADMIN_TIMEOUT_S = 10.0
_NO_STORE = {"cache-control": "no-store"}
# The page keeps the admin token in the tab: no framing (clickjacking), no script or style but our
# own files (an injected string cannot run), no request but to this edge, no sniffing of assets.
_PAGE_HEADERS = {
    **_NO_STORE,
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_INT32_MAX = 2**31 - 1  # ListJobsRequest.limit


def _enabled(state: EdgeState) -> None:
    if state.settings.admin_token is None:
        raise EdgeError(404, "The admin pages are off: set edge.admin_token.", code="not_found")


def _authorize(request: Request) -> EdgeState:
    """The edge state, once the caller proved it holds the admin token. Wrong tokens are
    throttled by client address and overall (`edge.admin_throttle`): past a limit the token is
    not compared at all, a 429 with Retry-After instead."""
    state = edge_state(request)
    _enabled(state)
    token = state.settings.admin_token
    assert token is not None
    address = client_address(request.client.host if request.client is not None else None)
    refusal = state.admin_throttle.refusal(address)
    if refusal is not None:
        raise EdgeError(
            429,
            refusal.message,
            code="too_many_failed_authentications",
            type="rate_limit_error",
            headers=retry_after_headers(refusal.retry_after_s),
        )
    header = request.headers.get("authorization")
    scheme, _, given = (header or "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        # The router's 401s, in type and codes (router_service/auth: AuthenticationError).
        if header is None:  # no guess: not counted
            message, code = (
                "Missing admin token: send `authorization: Bearer <token>`.",
                "missing_api_key",
            )
        else:
            said = request.headers.get("x-request-id", "")  # on its lockout's line, if it locks
            state.admin_throttle.failed(
                address, said if forwardable("x-request-id", said) else None
            )
            message, code = "Incorrect admin token provided.", "invalid_api_key"
        raise EdgeError(401, message, code=code, type="authentication_error")
    state.admin_throttle.succeeded(address)
    return state


def _router_metadata(request: Request, state: EdgeState) -> Metadata:
    """What AdminService calls carry: the configured router key, else the caller's own."""
    pairs = [(k, v) for k, v in forwarded_metadata(request) if k != "authorization"]
    key = state.settings.admin_router_key
    if key is not None:
        pairs.append(("authorization", f"Bearer {key.get_secret_value()}"))
    elif "authorization" in request.headers:
        pairs.append(("authorization", request.headers["authorization"]))
    return tuple(pairs)


_REFUSED = {
    grpc.StatusCode.UNAUTHENTICATED: "a key it does not know",
    grpc.StatusCode.PERMISSION_DENIED: "a key without the `admin` scope",
}
_THROTTLED = (
    "too many failed admin authentications (a key it does not know, each call counted) from "
    "the caller's address or from all addresses"
)


@contextmanager
def _router_refusals(state: EdgeState) -> Iterator[None]:
    """The router refusing `edge.admin_router_key` is this edge's setting at fault: a 502 that
    says so, not the router's 401 or 403, which read as the admin token refused (the page then
    signs the operator out), nor the router's 429 once it throttles the key's calls (by the
    caller's address, which the edge names: its failures are this key's). The caller's own key
    forwarded: its refusal stays the caller's."""
    try:
        yield
    except RouterError as exc:
        # The caller's address past `auth.key_throttle` (wrong client keys from it, whoever
        # sent them) is no fault of the key: the address's 429 is the caller's.
        if state.settings.admin_router_key is None or exc.details.reason == KEY_THROTTLED:
            raise
        headers: dict[str, str] | None = None
        why = _REFUSED.get(exc.grpc_code)
        retry_after_s = exc.details.retry_after_s
        if exc.details.openai_code == "too_many_failed_authentications" and retry_after_s:
            # The router counts every call carrying this key: most likely the key is the one
            # it does not know, whoever's address it counted it by.
            why = f"throttled for {math.ceil(retry_after_s)} s: {_THROTTLED}"
            headers = retry_after_headers(retry_after_s)
        if why is None:
            raise
        message = f"The router refused edge.admin_router_key ({why}): set an admin client's key."
        raise EdgeError(
            502, message, code="admin_router_key_refused", type="api_error", headers=headers
        ) from None


@router.get("/admin", include_in_schema=False)
async def admin_page(request: Request) -> Response:
    _enabled(edge_state(request))
    return FileResponse(_STATIC / "index.html", media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/admin/static/{name}", include_in_schema=False)
async def admin_asset(request: Request) -> Response:
    name: str = request.path_params["name"]  # not a signature parameter: see _openapi.py
    _enabled(edge_state(request))
    if name not in _ASSETS:
        raise EdgeError(404, "No such file.", code="not_found")
    return FileResponse(_STATIC / name, media_type=_ASSETS[name], headers=_PAGE_HEADERS)


@router.get("/admin/keys", openapi_extra=PROVIDER_PARAM)
async def admin_keys(request: Request) -> Response:
    """Every upstream key by fingerprint, with its state (AdminService.ListKeys)."""
    provider = request.query_params.get("provider", "")  # not a signature parameter: _openapi.py
    state = _authorize(request)
    with _router_refusals(state):
        listed = await state.router().list_keys(
            admin_pb.ListKeysRequest(provider=provider),
            timeout=_ADMIN_TIMEOUT_S,
            metadata=_router_metadata(request, state),
        )
    now = state.clock.now()
    return JSONBytesResponse({"keys": [_key(k, now) for k in listed.keys]}, headers=_NO_STORE)


@router.get("/admin/api/clients")
async def admin_clients(request: Request) -> Response:
    """Every configured client (app): scopes, models, limits, this minute's requests and
    tokens, budgets and stored-response bytes used (AdminService.ListClients); never a key."""
    state = _authorize(request)
    with _router_refusals(state):
        listed = await state.router().list_clients(
            timeout=_ADMIN_TIMEOUT_S, metadata=_router_metadata(request, state)
        )
    now = state.clock.now()
    view = {"generated_at": now, "clients": clients_view(listed, now)}
    return JSONBytesResponse(view, headers=_NO_STORE)


@router.get("/admin/api/jobs", openapi_extra=JOBS_LIMIT_PARAM)
async def admin_jobs(request: Request) -> Response:
    """The batches not ended (every replica's), and the background responses and Realtime
    sessions of the replica that answered (AdminService.ListJobs); `?limit=N` of each."""
    limit = request.query_params.get("limit", "0")  # not a signature parameter: _openapi.py
    state = _authorize(request)
    # Within the call's int32 (the router says how many it allows): anything else is the
    # caller's 400, not a 500.
    number = whole_number(limit)
    if number is None or number > _INT32_MAX:
        raise EdgeError(400, "`limit` must be a whole number.", code=None, param="limit")
    with _router_refusals(state):
        listed = await state.router().list_jobs(
            number, timeout=_ADMIN_TIMEOUT_S, metadata=_router_metadata(request, state)
        )
    now = state.clock.now()
    view = {"generated_at": now} | jobs_view(listed, now)
    return JSONBytesResponse(view, headers=_NO_STORE)


@contextmanager
def _first_failure() -> Iterator[None]:
    """A task group's failure as its first error (a RouterError the edge maps), not the group."""
    try:
        yield
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from failed.exceptions[0].__cause__


@router.get("/admin/api/status")
async def admin_status(request: Request) -> Response:
    """The replica that answered, pools, groups, deployments with routing statistics, keys by
    state, cooldowns, sessions, clients."""
    state = _authorize(request)
    client, metadata = state.router(), _router_metadata(request, state)
    timeout = _ADMIN_TIMEOUT_S
    # With several replicas behind the edge, each call may reach another: `server` names the
    # one that answered GetServerInfo (keys, statistics and clients' counts on Redis are the
    # same from any).
    # A group, not a gather: one call failing cancels the others, none left running unowned.
    with _router_refusals(state), _first_failure():
        async with asyncio.TaskGroup() as group:
            info = group.create_task(client.get_server_info(timeout=timeout, metadata=metadata))
            keys = group.create_task(client.list_keys(timeout=timeout, metadata=metadata))
            stats = group.create_task(client.get_routing_stats(timeout=timeout, metadata=metadata))
            listed = group.create_task(client.list_clients(timeout=timeout, metadata=metadata))
            jobs = group.create_task(_jobs_if_listed(client, metadata))
    now = state.clock.now()
    view = status_view(info.result(), keys.result(), stats.result(), now)
    view["clients"] = clients_view(listed.result(), now)
    view["jobs"] = None if (listed_jobs := jobs.result()) is None else jobs_view(listed_jobs, now)
    return JSONBytesResponse(view, headers=_NO_STORE)


async def _jobs_if_listed(
    client: RouterClient, metadata: Metadata
) -> admin_pb.ListJobsResponse | None:
    """ListJobs, or None from a router that predates it (UNIMPLEMENTED): during a rolling
    upgrade a new edge may face an old router, and the rest of the page must still show."""
    try:
        return await client.list_jobs(timeout=_ADMIN_TIMEOUT_S, metadata=metadata)
    except RouterError as exc:
        if exc.grpc_code == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise


def server_view(info: admin_pb.GetServerInfoResponse, now: float) -> dict[str, Any]:
    """Which replica answered and what it runs; times as seconds ago / left."""
    expires = info.certificate_expires_unix
    return {
        "version": info.version,
        "replica": info.replica,
        "address": info.address,
        "up_s": _left(now, info.started_unix),
        "config_digest": info.config_digest or None,
        "config_age_s": _left(now, info.config_loaded_unix),
        "reload_error": info.reload_error or None,
        "state_backend": info.state_backend,
        "state_degraded": info.state_degraded,
        "certificate_left_s": round(expires - now, 1) if expires else None,
        "auth_open": info.auth_open,
    }


def status_view(
    info: admin_pb.GetServerInfoResponse,
    keys: admin_pb.ListKeysResponse,
    stats: admin_pb.GetRoutingStatsResponse,
    now: float,
) -> dict[str, Any]:
    """The page's data: everything the router said, with remaining times computed here."""
    key_rows = [_key(k, now) for k in keys.keys]
    by_state: dict[str, dict[str, int]] = {}
    for row in key_rows:
        counts = by_state.setdefault(row["provider"], {"active": 0, "cooling": 0, "disabled": 0})
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    deployments = [_deployment(d, now) for d in stats.deployments]
    return {
        "generated_at": now,
        "server": server_view(info, now),
        "groups": [
            {
                "name": g.name,
                "kind": "pool" if g.groups else "group",
                "strategy": g.strategy,
                "deployments": list(g.deployments),
                "groups": list(g.groups),
            }
            for g in stats.groups
        ],
        "deployments": deployments,
        "keys": key_rows,
        "keys_by_state": by_state,
        "cooldowns": _cooldowns(deployments, key_rows),
        "sessions": [
            {
                "provider": s.provider,
                "thread_protection": s.thread_protection,
                "active_sessions": len(s.active),
                "active_requests": sum(s.active.values()),
                "banned_sessions": list(s.banned_sessions),
                "skipped": list(s.skipped),
            }
            for s in stats.sessions
        ],
    }


def _left(until: float, now: float) -> float:
    return round(max(0.0, until - now), 1)


def _key(key: admin_pb.KeyStatus, now: float) -> dict[str, Any]:
    return {
        "fingerprint": key.fingerprint,
        "provider": key.provider,
        "state": _STATES.get(key.state, "unknown"),
        "in_flight": key.in_flight,
        "max_in_flight": key.max_in_flight or None,
        "until_unix": key.until_unix or None,
        "left_s": _left(key.until_unix, now) if key.until_unix else None,
        "last_outcome": key.last_outcome or None,
        "cooling_models": {m: _left(u, now) for m, u in sorted(key.cooling_models.items())},
        "disabled_reason": key.disabled_reason or None,
        "disabled_note": key.disabled_note or None,
        "disabled_by": key.disabled_by or None,
    }


def _deployment(d: admin_pb.DeploymentStatus, now: float) -> dict[str, Any]:
    cooling = d.cooldown_until_unix > now
    return {
        "deployment": d.deployment,
        "provider": d.provider,
        "success_mean": round(d.success_mean, 4),
        "alpha": round(d.alpha, 3),
        "beta": round(d.beta, 3),
        "successes": d.successes,
        "failures": d.failures,
        "latency_ewma_ms": round(d.latency_ewma_ms, 1) if d.latency_ewma_ms else None,
        "cooldown_left_s": _left(d.cooldown_until_unix, now) if cooling else None,
        "stream_options_refused": d.stream_options_refused,
    }


def _cooldowns(deployments: list[dict[str, Any]], keys: list[dict[str, Any]]) -> list[Any]:
    rows: list[dict[str, Any]] = [
        {"scope": "deployment", "name": d["deployment"], "provider": d["provider"], "left_s": left}
        for d in deployments
        if (left := d["cooldown_left_s"]) is not None
    ]
    for key in keys:
        name = f"{key['provider']}:{key['fingerprint']}"
        if key["state"] == "disabled":
            rows.append(
                {"scope": "key", "name": name, "provider": key["provider"], "left_s": key["left_s"]}
            )
        for model, left in key["cooling_models"].items():
            rows.append(
                {"scope": "key × model", "name": f"{name} × {model}", "provider": key["provider"]}
                | {"left_s": left}
            )
    return sorted(rows, key=lambda row: -(row["left_s"] or 0))
