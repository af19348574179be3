"""Reading a captured trace: spans by name, their children, their events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from router_service.telemetry.testing import TelemetryCapture
from tests.helpers import eventually


class Trace:
    def __init__(self, spans: Sequence[ReadableSpan]) -> None:
        self.spans = list(spans)

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {self.names()}"
        return found[0]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        span_id = parent.context.span_id
        kids = [s for s in self.spans if s.parent is not None and s.parent.span_id == span_id]
        return sorted(kids, key=lambda s: s.start_time or 0)

    def names(self) -> list[str]:
        return [s.name for s in self.spans]

    def trace_ids(self) -> set[int]:
        return {s.context.trace_id for s in self.spans}


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def events(span: ReadableSpan) -> dict[str, dict[str, Any]]:
    return {e.name: dict(e.attributes or {}) for e in span.events}


async def ended(captured: TelemetryCapture, *names: str, within: float = 5.0) -> Trace:
    """The captured spans, once a span of each name has ended."""

    async def done() -> bool:
        finished = {s.name for s in captured.spans()}
        return all(name in finished for name in names)

    await eventually(done, within=within, what=f"spans {names} ended")
    return Trace(captured.spans())


def requests(trace: Trace, model: str) -> list[ReadableSpan]:
    """The spans of the router's requests for `model` (a call's SERVER span over the wire, which
    is its request's span), by when they started."""
    return [
        s
        for s in sorted(trace.spans, key=lambda s: s.start_time or 0)
        if "switchboard.attempts" in attrs(s) and attrs(s).get("gen_ai.request.model") == model
    ]


async def ended_request(captured: TelemetryCapture, model: str) -> ReadableSpan:
    """The span of the router's one request for `model`, once it ended."""

    async def done() -> bool:
        return len(requests(Trace(captured.spans()), model)) == 1

    await eventually(done, what=f"the request for {model} ended")
    return requests(Trace(captured.spans()), model)[0]
