"""Stored Responses API responses and conversations: what lets a later request continue one."""

from router_service.responses._background import (
    CANCELLED,
    DELETED,
    DONE,
    RUNNING,
    STOPPED_MESSAGE,
    BackgroundRecords,
    JobId,
    settle,
)
from router_service.responses._conversation_items import (
    checked_items,
    checked_metadata,
    checked_object,
)
from router_service.responses._conversations import Conversations
from router_service.responses._stored import (
    ENTRY_BYTES,
    LOADS_PER_CLIENT,
    MAX_IDS,
    StoredResponses,
)
from router_service.responses._stream_log import StreamLog, StreamWriter

__all__ = [
    "CANCELLED",
    "DELETED",
    "DONE",
    "ENTRY_BYTES",
    "LOADS_PER_CLIENT",
    "MAX_IDS",
    "RUNNING",
    "STOPPED_MESSAGE",
    "BackgroundRecords",
    "Conversations",
    "JobId",
    "StoredResponses",
    "StreamLog",
    "StreamWriter",
    "checked_items",
    "checked_metadata",
    "checked_object",
    "settle",
]
