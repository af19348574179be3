"""The AdminService's answers as text for a terminal: one function per answer, each given the
time to show deadlines against (`now`, Unix seconds)."""

from __future__ import annotations

from collections.abc import Iterable

from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service.admin_cli._format import ago, count, duration, size, table, until

__all__ = ["client_tables", "info_table", "key_table", "stats_tables"]


def info_table(info: pb.GetServerInfoResponse, now: float) -> str:
    if info.reload_error:
        reload = f"FAILED, the config before it still in force: {info.reload_error}"
    else:
        reload = "ok"
    state = info.state_backend
    if info.state_degraded:
        state += " (UNREACHABLE: this replica decides alone from its local state)"
    certificate = "none (plaintext gRPC)"
    if info.certificate_expires_unix:
        certificate = f"expires {until(info.certificate_expires_unix, now)}"
    loaded = f"loaded {ago(info.config_loaded_unix, now)}"
    rows = [
        ("version", info.version),
        ("replica", info.replica),
        ("address", info.address),
        ("serving for", duration(now - info.started_unix)),
        ("config", f"{info.config_digest or '(no file)'}, {loaded}"),
        ("last reload", reload),
        ("state", state),
        ("certificate", certificate),
        ("callers", "OPEN: let in without a client key" if info.auth_open else "client keys"),
    ]
    return table(rows)


def _state(state: pb.KeyState.ValueType) -> str:
    return pb.KeyState.Name(state).removeprefix("KEY_STATE_").lower()


def key_table(keys: Iterable[pb.KeyStatus], now: float) -> str:
    rows = []
    for key in keys:
        in_flight = str(key.in_flight)
        if key.max_in_flight:
            in_flight += f"/{key.max_in_flight}"
        cooling = ", ".join(
            f"{model} {until(end, now)}" for model, end in sorted(key.cooling_models.items())
        )
        rows.append(
            (
                key.provider,
                key.fingerprint,
                _state(key.state),
                in_flight,
                until(key.until_unix, now, open_ended=True),
                _why(key),
                key.last_outcome or "-",
                cooling or "-",
            )
        )
    headers = ("PROVIDER", "FINGERPRINT", "STATE", "IN FLIGHT", "UNTIL", "WHY")
    return table(rows, (*headers, "LAST OUTCOME", "COOLING MODELS")) or "no keys"


def _why(key: pb.KeyStatus) -> str:
    """Why a key is disabled: `manual: rotating (ops-bot)`, `auth`, `-` when it is not."""
    if not key.disabled_reason:
        return "-"
    why = key.disabled_reason
    if key.disabled_note:
        why += f": {key.disabled_note}"
    return why + (f" ({key.disabled_by})" if key.disabled_by else "")


def stats_tables(stats: pb.GetRoutingStatsResponse, now: float) -> str:
    deployments = [
        (
            d.deployment,
            d.provider,
            f"{d.success_mean:.3f}",
            count(d.successes),
            count(d.failures),
            f"{d.alpha:.2f}/{d.beta:.2f}",
            f"{d.latency_ewma_ms:,.0f} ms" if d.latency_ewma_ms else "-",
            until(d.cooldown_until_unix, now),
        )
        for d in stats.deployments
    ]
    groups = [
        (g.name, g.strategy, ", ".join(g.deployments) or "-", ", ".join(g.groups) or "-")
        for g in stats.groups
    ]
    sessions = [
        (
            s.provider,
            s.thread_protection,
            f"{len(s.active)} ({sum(s.active.values())} requests)",
            count(len(s.banned_sessions)),
            count(len(s.skipped)),
        )
        for s in stats.sessions
    ]
    headers = ("DEPLOYMENT", "PROVIDER", "SUCCESS", "OK", "FAILED", "ALPHA/BETA", "LATENCY")
    return "\n\n".join(
        [
            table(deployments, (*headers, "COOLDOWN")) or "no deployments",
            table(groups, ("GROUP", "STRATEGY", "DEPLOYMENTS", "MEMBER GROUPS")) or "no groups",
            table(
                sessions, ("PROVIDER", "THREAD PROTECTION", "ACTIVE SESSIONS", "BANNED", "SKIPPED")
            )
            or "no providers",
        ]
    )


def _limit(client: pb.ClientStatus, used: str, limit: str) -> str:
    """`2.5/60` (this minute against its limit), `-` without a limit."""
    if not client.HasField(limit):  # type: ignore[arg-type]
        return "-"
    value = getattr(client, used) if client.HasField(used) else 0  # type: ignore[arg-type]
    return f"{count(value)}/{count(getattr(client, limit))}"


def _usage(client: pb.ClientStatus, now: float) -> list[tuple[str, str, str, str, str]]:
    """Each budget and byte quota of `client`: what, used, limit, share, when it renews."""
    rows = []
    for budget in client.budgets:
        share = f"{budget.used / budget.limit:.0%}" if budget.limit else "-"
        used, limit = count(budget.used), count(budget.limit)
        rows.append((f"tokens/{budget.period}", used, limit, share, until(budget.resets_unix, now)))
    for spend in client.spend_budgets:
        share = f"{spend.used_usd / spend.limit_usd:.0%}" if spend.limit_usd else "-"
        used, limit = f"${spend.used_usd:,.4f}", f"${spend.limit_usd:,.2f}"
        rows.append((f"usd/{spend.period}", used, limit, share, until(spend.resets_unix, now)))
    for field, what in (
        ("stored_responses", "stored responses"),
        ("cached_answers", "cached answers"),
        ("conversations", "conversations"),
    ):
        if client.HasField(field):  # type: ignore[arg-type]
            quota: pb.ByteQuotaStatus = getattr(client, field)
            share = f"{quota.used / quota.quota:.0%}" if quota.quota else "-"
            renews = until(quota.resets_unix, now)
            rows.append((what, size(quota.used), size(quota.quota), share, renews))
    return rows


def client_tables(clients: pb.ListClientsResponse, now: float) -> str:
    limits = []
    usage = []
    keys: list[tuple[str, ...]] = []
    for client in clients.clients:
        streams = "-"
        if client.HasField("max_concurrent_streams"):
            streams = f"{client.open_streams}/{client.max_concurrent_streams}"
        limits.append(
            (
                client.name,
                ",".join(client.scopes) or "-",
                ",".join(client.models) or "-",
                _limit(client, "minute_requests", "rpm"),
                _limit(client, "minute_tokens", "tpm"),
                streams,
            )
        )
        usage += [(client.name, *row) for row in _usage(client, now)]
        keys += [_key_row(client.name, key, now) for key in client.keys]
    headers = ("CLIENT", "SCOPES", "MODELS", "RPM (NOW/MAX)", "TPM (NOW/MAX)", "STREAMS")
    shown = table(limits, headers) or "no clients"
    if usage:
        shown += "\n\n" + table(
            usage, ("CLIENT", "BUDGET OR QUOTA", "USED", "LIMIT", "SHARE", "RENEWS")
        )
    if keys:
        shown += "\n\n" + table(keys, ("CLIENT", "KEY", "ISSUED AS", "LABEL", "EXPIRES"))
    return shown


def _key_row(client: str, key: pb.ClientKey, now: float) -> tuple[str, ...]:
    """One of a client's keys, as `--json` shows it: by fingerprint, never the key."""
    issued = key.id or "configured"
    return (
        client,
        key.fingerprint,
        issued,
        key.label or "-",
        until(key.expires_unix, now, none="never"),
    )
