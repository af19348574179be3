"""A stream that fails after its 200 is the server's failure on the edge's HTTP SERVER span over
two processes too (`error.type` and an error status), as it is in one process, where the
router's request marks that span (`test_one_process_spans.py`): error rates read from SERVER
spans are the same in both. A caller that leaves mid-stream fails nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.trace import StatusCode

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.e2e.stream_harness import BODY, MESSAGES, OpenStack, leave_after
from tests.router_service.telemetry.spans import attrs, ended

MESSAGES_BODY = {
    "model": "chain",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "tell me a story"}],
    "stream": True,
}
# Each streaming entrance: its path and a streamed request's body.
ENTRANCES = [
    pytest.param("/v1/chat/completions", BODY, id="chat"),
    pytest.param("/v1/messages", MESSAGES_BODY, id="anthropic messages"),
]


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture


@pytest.mark.parametrize("in_process", [False, True], ids=["two processes", "one process"])
@pytest.mark.parametrize(("path", "body"), ENTRANCES)
async def test_a_stream_reset_after_its_200_fails_the_edge_span(
    captured: TelemetryCapture,
    open_stack: OpenStack,
    fake: FakeUpstream,
    path: str,
    body: dict[str, object],
    in_process: bool,
) -> None:
    """The upstream resets mid-stream: the caller reads an error event in a 200, and the edge's
    span says the router's outcome with an error status, alike in two processes (from the
    stream's error event) and in one (where the router's request says it on that span)."""
    stack = await open_stack(in_process=in_process)
    fake.state.set_scenario(Scenario(chunks=10, reset_after_chunks=3))

    response = await stack.http.post(path, json=body)
    assert response.status_code == 200
    assert b"error" in response.content

    name = f"POST {path}"
    edge = (await ended(captured, name)).one(name)
    said = attrs(edge)
    assert said["http.response.status_code"] == 200
    assert said["error.type"] == "UPSTREAM_ERROR"
    assert edge.status.status_code is StatusCode.ERROR
    assert (edge.status.description or "").startswith("UPSTREAM_ERROR: ")


async def test_a_caller_leaving_a_stream_fails_no_edge_span(
    captured: TelemetryCapture, open_stack: OpenStack, fake: FakeUpstream
) -> None:
    """The caller leaves mid-stream (the router's stream ends under the edge without a summary):
    the caller's doing, not a truncated stream of the server's."""
    stack = await open_stack()
    fake.state.set_scenario(Scenario(chunks=50, held_after_chunks=8))

    stream = await stack.sdk.chat.completions.create(model="chain", messages=MESSAGES, stream=True)
    await leave_after(stream, 5)

    edge = (await ended(captured, "POST /v1/chat/completions")).one("POST /v1/chat/completions")
    assert "error.type" not in attrs(edge)
    assert edge.status.status_code is not StatusCode.ERROR
