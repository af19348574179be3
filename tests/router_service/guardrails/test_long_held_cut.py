"""A forced release (past MAX_HELD_CHARS held) whose window falls inside a block's END line: a
single upstream delta of 65,536+ characters that holds a key through its END line and a little
text after it. The block ended, so it is released whole through its END line, one marker; before,
the release cut inside the END line and its second half (` KEY-----`) reached the caller."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from router_service.guardrails import TextScreen
from router_service.guardrails._text_screen import HOLD_BACK_CHARS, MAX_HELD_CHARS
from tests.conftest import StartRouter
from tests.helpers import serve_app
from tests.router_service.auth.helpers import bearer, chat_stream, client, guarded_config
from tests.router_service.guardrails.test_long_held import PROSE, RULE, _pem

pytestmark = pytest.mark.timeout(120)

_KEY = _pem(1050)  # through its END line: ~68,000 characters
assert len(_KEY) > MAX_HELD_CHARS


def _deltas(after: int) -> list[str]:
    """The answer's deltas: prose, then one of the key and `after` characters after it."""
    return [PROSE, "here:\n", f"{_KEY}\n{('x ' * 100)[:after]}", PROSE]


@pytest.mark.parametrize("after", [10, 60, 100, 110, 120, HOLD_BACK_CHARS - 1, 140])
def test_a_forced_release_never_cuts_inside_an_end_line(after: int) -> None:
    deltas = _deltas(after)
    unary = RULE.redact("".join(deltas), Counter())
    assert unary is not None and unary.count("[REDACTED:private_key]") == 1
    screen = TextScreen((RULE,), {})
    released = [screen.feed(delta) for delta in deltas] + [screen.feed("", final=True)]
    assert "".join(released) == unary and "KEY-----" not in "".join(released)


def _sse(deltas: list[str]) -> bytes:
    head = b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    events = [{"role": "assistant", "content": ""}] + [{"content": d} for d in deltas]
    lines = [
        head + b'[{"index":0,"delta":' + orjson.dumps(e) + b',"finish_reason":null}]}\n\n'
        for e in events
    ]
    lines.append(head + b'[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n')
    return b"".join(lines) + b"data: [DONE]\n\n"


@pytest.fixture
async def upstream_url() -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.StreamResponse:
        after = int((await request.json())["messages"][0]["content"])
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_sse(_deltas(after)))
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    async with serve_app(app) as base_url:
        yield f"{base_url}/v1"


@pytest.mark.parametrize("after", [60, 110])
async def test_a_grpc_stream_never_shows_half_an_end_line(
    upstream_url: str, start_router: StartRouter, after: int
) -> None:
    rule = {"name": "answer-keys", "detect": ["private_key"], "action": "redact"}
    config = guarded_config(
        upstream_url, client("bot", "sk-bot-key"), guardrails=[rule | {"apply_to": ["response"]}]
    )
    router: Any = await start_router(config)
    call = router.stub.ChatStream(chat_stream(text=str(after)), metadata=bearer("sk-bot-key"))
    events = [event async for event in call if event.WhichOneof("event") == "chunk"]
    streamed = "".join(c.delta.text for event in events for c in event.chunk.choices)
    expected = f"{PROSE}here:\n[REDACTED:private_key]\n{('x ' * 100)[:after]}{PROSE}"
    assert streamed == expected
