"""The usage of a Realtime session, summed from its upstream's `response.done` events: read by
the WebSocket relay (`_realtime.py`) and by a WebRTC call's sideband (`_call_watch.py`)."""

from __future__ import annotations

import orjson

from clients.switchboard.v1 import chat_pb2

__all__ = ["RealtimeUsage"]

_MOST = 2**53  # tokens in one report: past it, a count no upstream means


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
        if not isinstance(usage, dict):
            return
        inputs, outputs = _count(usage, "input_tokens"), _count(usage, "output_tokens")
        total = _count(usage, "total_tokens")
        if inputs is None or outputs is None or total is None:
            return  # a buggy server's report: none of it (it could take back what was counted)
        self.input_tokens += inputs
        self.output_tokens += outputs
        self.total_tokens += total or inputs + outputs

    def usage(self) -> chat_pb2.Usage:
        return chat_pb2.Usage(
            prompt_tokens=self.input_tokens,
            completion_tokens=self.output_tokens,
            total_tokens=self.total_tokens,
        )


def _count(usage: dict[str, object], name: str) -> int | None:
    """A usage field's count (absent or null: 0); None when it is negative, no number or past
    what a session could use (which the counts' int64 fields could not carry)."""
    value = usage.get(name) or 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < _MOST:
        return None
    return int(value)
