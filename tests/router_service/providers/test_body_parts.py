"""`body_parts`: an upstream stream's body read straight from the lean transport's connection
(httpx's `aiter_bytes` for a body it must decode), left as httpx leaves it — the connection
back once the body is read to its end, and the upstream call's span ended then too."""

from __future__ import annotations

import pytest

from router_service.providers._http import send_upstream
from router_service.providers._lean_transport import body_parts
from tests.router_service.providers.test_upstream_client import (
    _PAYLOAD,
    _post,
    raw_upstream,
    traced_lean,
)

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize("answer", ["chunked", "gzip"])
async def test_a_traced_stream_read_to_its_end_ends_its_span(answer: str) -> None:
    # Before the response is closed (a stream's is closed with its call's stack, after the
    # summary, maybe in the background): the span is the upstream call's, not the stack's.
    async with raw_upstream() as (base_url, accepted), traced_lean() as (http, lean, spans):
        for _ in range(2):  # the second on the connection the first gave back
            response = await send_upstream(http, _post(f"{base_url}/{answer}"), stream=True)
            assert b"".join([part async for part in body_parts(response)]) == _PAYLOAD
            assert lean.idle_connections == 1
            ended = spans.get_finished_spans()
            assert [span.attributes["http.response.status_code"] for span in ended] == [200]  # type: ignore[index]
            await response.aclose()
            assert len(spans.get_finished_spans()) == 1  # once
            spans.clear()
    assert accepted == [1]
