"""The usage of a Realtime session, summed from its upstream's `response.done` events: read by
the WebSocket relay (`_realtime.py`) and by a WebRTC call's sideband (`_call_watch.py`)."""

from __future__ import annotations

import orjson

from clients.switchboard.v1 import chat_pb2

__all__ = ["RealtimeUsage"]


class RealtimeUsage:
    """Tokens in, out and in all, over the session's responses so far."""

    __slots__ = ("input_tokens", "output_tokens", "total_tokens")

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.total_tokens = 0

    def count(self, event_json: str) -> None:
        """Add the usage of a `response.done` event (any other event: nothing)."""
        if '"response.done"' not in event_json:
            return
        try:
            event = orjson.loads(event_json)
        except orjson.JSONDecodeError:
            return  # relayed as it is: the caller's SDK says what it makes of it
        response = event.get("response") if isinstance(event, dict) else None
        usage = response.get("usage") if isinstance(response, dict) else None
        if isinstance(usage, dict):
            inputs = int(usage.get("input_tokens") or 0)
            outputs = int(usage.get("output_tokens") or 0)
            self.input_tokens += inputs
            self.output_tokens += outputs
            self.total_tokens += int(usage.get("total_tokens") or inputs + outputs)

    def usage(self) -> chat_pb2.Usage:
        return chat_pb2.Usage(
            prompt_tokens=self.input_tokens,
            completion_tokens=self.output_tokens,
            total_tokens=self.total_tokens,
        )
