"""The edge's WebSocket protocol (`/v1/realtime`), loaded on the first upgrade: uvicorn's
`ws="websockets-sansio"` imports `websockets` when its config loads, into the RSS of every
edge, also of the many that never serve a realtime session."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["lazy_websocket_protocol"]


def lazy_websocket_protocol(**kwargs: Any) -> asyncio.Protocol:
    """What uvicorn calls as its `ws_protocol_class` for each upgrade request."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    return WebSocketsSansIOProtocol(**kwargs)
