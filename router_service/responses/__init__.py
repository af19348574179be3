"""Stored Responses API responses: what lets a later request continue a conversation."""

from router_service.responses._stored import (
    ENTRY_BYTES,
    LOADS_PER_CLIENT,
    MAX_ID_BYTES,
    MAX_IDS,
    StoredResponses,
)

__all__ = ["ENTRY_BYTES", "LOADS_PER_CLIENT", "MAX_IDS", "MAX_ID_BYTES", "StoredResponses"]
