"""Shared and local router state behind one StateStore interface."""

from typing import TYPE_CHECKING

from router_service.state._base import (
    FOREVER,
    RATE_WINDOW_S,
    UNHURRIED,
    AppendResult,
    DocumentPart,
    FlightClaim,
    FlightWatch,
    Landing,
    PutResult,
    RateCount,
    RateWindows,
    Reading,
    SlotGrant,
    SlotRequest,
    StateStore,
    StoreUnavailableError,
)
from router_service.state._documents import KEEP_EXPIRY, index_name, tombstone_name
from router_service.state._kept import kept_message
from router_service.state._log import DROPPED, READ_BYTES, DocumentLines, LogWriter
from router_service.state._memory import MemoryStateStore
from router_service.state._open import open_store
from router_service.state._quota import ByteQuota, QuotaReading, QuotaStanding
from router_service.state._rates import correction_window, sliding_count, sliding_wait
from router_service.state._resilient import ResilientStateStore
from router_service.state._shared_writes import (
    answered_locally,
    document_delete,
    documents_delete,
)

if TYPE_CHECKING:  # for the type checker only: at run time __getattr__ imports it on first use
    from router_service.state._redis import RedisStateStore


def __getattr__(name: str) -> object:
    # RedisStateStore is imported on first use only: most processes run on the memory backend.
    if name == "RedisStateStore":
        from router_service.state._redis import RedisStateStore

        return RedisStateStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DROPPED",
    "FOREVER",
    "KEEP_EXPIRY",
    "RATE_WINDOW_S",
    "READ_BYTES",
    "UNHURRIED",
    "AppendResult",
    "ByteQuota",
    "DocumentLines",
    "DocumentPart",
    "FlightClaim",
    "FlightWatch",
    "Landing",
    "LogWriter",
    "MemoryStateStore",
    "PutResult",
    "QuotaReading",
    "QuotaStanding",
    "RateCount",
    "RateWindows",
    "Reading",
    "RedisStateStore",
    "ResilientStateStore",
    "SlotGrant",
    "SlotRequest",
    "StateStore",
    "StoreUnavailableError",
    "answered_locally",
    "correction_window",
    "document_delete",
    "documents_delete",
    "index_name",
    "kept_message",
    "open_store",
    "sliding_count",
    "sliding_wait",
    "tombstone_name",
]
