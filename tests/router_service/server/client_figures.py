"""What the ListClients tests share: clients, instants on a ManualClock, and readings."""

from __future__ import annotations

import datetime as dt

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb

OPS, ALICE, BOB = "sk-ops-clients-0123", "sk-alice-clients-0123", "sk-bob-clients-0123"
NOON = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC).timestamp()
MIDNIGHT = dt.datetime(2026, 12, 5, tzinfo=dt.UTC).timestamp()
NEW_MONTH = dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
ALICE_LIMITS = {"rpm": 10, "tpm": 5000, "max_concurrent_streams": 2}
ALICE_BUDGETS = {"tokens_per_day": 1000, "tokens_per_month": 20000}


def stored(response_id: str) -> pb.StoreResponseRequest:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="x" * 100)
    return pb.StoreResponseRequest(response=pb.StoredResponse(id=response_id, messages=[message]))


def quota_of(status: admin_pb.ByteQuotaStatus) -> tuple[int, int, float]:
    return status.used, status.quota, status.resets_unix


def budgets(status: admin_pb.ClientStatus) -> list[tuple[str, int, int, float]]:
    return [(b.period, b.limit, b.used, b.resets_unix) for b in status.budgets]
