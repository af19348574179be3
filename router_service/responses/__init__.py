"""Stored Responses API responses and conversations: what lets a later request continue one."""

from router_service.responses._conversations import Conversations
from router_service.responses._stored import (
    ENTRY_BYTES,
    LOADS_PER_CLIENT,
    MAX_ID_BYTES,
    MAX_IDS,
    StoredResponses,
)

__all__ = [
    "ENTRY_BYTES",
    "LOADS_PER_CLIENT",
    "MAX_IDS",
    "MAX_ID_BYTES",
    "Conversations",
    "StoredResponses",
]
