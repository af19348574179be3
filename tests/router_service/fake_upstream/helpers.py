"""Small helpers shared by the fake upstream tests."""

from __future__ import annotations

from typing import Any

import httpx
import orjson


def chat_body(
    text: str = "hello world", model: str = "gpt-4o-mini", **extra: Any
) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def split_events(raw: bytes) -> list[bytes]:
    """SSE data payloads of a complete body; asserts the exact `data: ...\\n\\n` framing."""
    assert raw.endswith(b"\n\n") or raw == b"", raw[-40:]
    events = [e for e in raw.split(b"\n\n") if e]
    for event in events:
        assert event.startswith(b"data: "), event
    return [e[len(b"data: ") :] for e in events]


class EventReader:
    """Reads SSE data events from a streaming response in steps (httpx streams only once)."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def take(self, n: int | None = None) -> list[bytes]:
        """The next `n` data events (all remaining ones if n is None)."""
        events: list[bytes] = []
        while n is None or len(events) < n:
            try:
                line = await anext(self._lines)
            except StopAsyncIteration:
                break
            if line.startswith("data: "):
                events.append(line[len("data: ") :].encode())
        return events


def parse(event: bytes) -> Any:
    return orjson.loads(event)
