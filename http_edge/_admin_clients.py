"""The clients (apps) as the admin page and `/admin/api/clients` show them: AdminService.ListClients
in JSON, with what the router leaves unset (a limit not configured, a minute not counted, storing
or the cache off) as null and period ends as seconds left too. The router's answer names no
key (its keys by fingerprint, an issued one with its label), so neither does this."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from clients.switchboard.v1 import admin_service_pb2 as admin_pb

__all__ = ["clients_view"]

# Optional fields: unset (no such limit, nothing counted) is null, never a 0 that reads as a limit.
_OPTIONAL = (
    "rpm",
    "tpm",
    "max_concurrent_streams",
    "minute_requests",
    "minute_tokens",
    "open_streams",
)


def clients_view(listed: admin_pb.ListClientsResponse, now: float) -> list[dict[str, Any]]:
    return [_client(status, now) for status in listed.clients]


def _client(status: admin_pb.ClientStatus, now: float) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": status.name,
        "anonymous": status.anonymous,
        "scopes": list(status.scopes),
        "models": list(status.models),
    }
    view |= {name: _optional(status, name) for name in _OPTIONAL}
    for name in ("minute_requests", "minute_tokens"):  # sliding: a share of the last minute
        if view[name] is not None:
            view[name] = round(view[name], 2)
    view["budgets"] = [
        {
            "period": budget.period,
            "limit": budget.limit,
            "used": budget.used,
            "resets_unix": budget.resets_unix,
            "resets_in_s": _left(budget.resets_unix, now),
        }
        for budget in status.budgets
    ]
    view["spend_budgets"] = [
        {
            "period": budget.period,
            "limit_usd": budget.limit_usd,
            "used_usd": round(budget.used_usd, 6),
            "resets_unix": budget.resets_unix,
            "resets_in_s": _left(budget.resets_unix, now),
        }
        for budget in status.spend_budgets
    ]
    # null: storing or the cache is off
    view["stored_responses"] = _bytes(status, "stored_responses", now)
    view["cached_answers"] = _bytes(status, "cached_answers", now)
    view["conversations"] = _bytes(status, "conversations", now)
    view["keys"] = [
        {
            "id": key.id,  # empty: configured in the file
            "label": key.label,
            "fingerprint": key.fingerprint,
            "expires_unix": key.expires_unix or None,
            "expires_in_s": _left(key.expires_unix, now) if key.expires_unix else None,
        }
        for key in status.keys
    ]
    return view


def _bytes(status: admin_pb.ClientStatus, name: str, now: float) -> dict[str, Any] | None:
    if _optional(status, name) is None:
        return None
    quota: admin_pb.ByteQuotaStatus = getattr(status, name)
    return {
        "used": quota.used,
        "quota": quota.quota,
        "resets_unix": quota.resets_unix,
        "resets_in_s": _left(quota.resets_unix, now),
    }


def _optional(message: Message, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _left(until: float, now: float) -> float:
    return round(max(0.0, until - now), 1)
