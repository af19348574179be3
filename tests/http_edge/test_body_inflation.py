"""Compressed bodies of megabytes (`http_edge/_body.py`): what lies past the first part inflates
in a worker thread, so the event loop answers other requests meanwhile; the decompressed size
limit and the error answers are the same on either side of that line."""

from __future__ import annotations

import asyncio
import gzip
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import httpx
import orjson
import pytest

from clients.switchboard.v1 import router_service_pb2 as rs
from tests.helpers import eventually
from tests.http_edge.edge_messages import completion, route
from tests.http_edge.harness import EdgeFactory, StubRouter

pytestmark = pytest.mark.timeout(30)
P = ParamSpec("P")
T = TypeVar("T")
LIMIT = 8 * 1024 * 1024
TEXT = "".join(f"word{i} " for i in range(250_000))  # ~2.6 MiB of JSON, once inflated


class HeldExecutor(ThreadPoolExecutor):
    """The event loop's default executor here: what is handed to it waits for `gate`."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.gate = threading.Event()
        self.submitted = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        self.submitted += 1

        def held() -> T:
            self.gate.wait(timeout=20)
            return fn(*args, **kwargs)

        return super().submit(held)


def chat(text: str) -> bytes:
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": text}]})


def post(http: httpx.AsyncClient, body: bytes, encoding: str = "gzip") -> Any:
    headers = {"content-type": "application/json", "content-encoding": encoding}
    return http.post("/v1/chat/completions", content=body, headers=headers)


@pytest.fixture
async def http(stub: StubRouter, start_edge: EdgeFactory) -> Any:
    async def on_chat(request: rs.ChatRequest, context: Any) -> rs.ChatResponse:
        return rs.ChatResponse(completion=completion("Hello!"), route=route())

    stub.on_chat = on_chat
    edge = await start_edge(max_body_bytes=LIMIT)
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=20) as client:
        yield client


async def test_a_large_body_inflates_off_the_loop_which_answers_others_meanwhile(
    http: httpx.AsyncClient, stub: StubRouter
) -> None:
    held = HeldExecutor()
    asyncio.get_running_loop().set_default_executor(held)
    try:
        large = asyncio.create_task(post(http, gzip.compress(chat(TEXT))))

        async def inflating() -> bool:
            return held.submitted == 1

        await eventually(inflating, within=10, what="the large body handed to a thread")
        small = await post(http, zlib.compress(chat("hi")), "deflate")  # inflated inline
        assert small.status_code == 200, small.text
        assert not large.done()
        held.gate.set()
        answer = await large
    finally:
        held.gate.set()
    assert answer.status_code == 200, answer.text
    assert held.submitted == 1
    assert [c.request.params.messages[0].text for c in stub.calls] == ["hi", TEXT]


async def test_the_limit_and_the_errors_hold_past_the_inline_part(
    http: httpx.AsyncClient, stub: StubRouter
) -> None:
    threads = HeldExecutor()
    threads.gate.set()
    asyncio.get_running_loop().set_default_executor(threads)
    over = await post(http, gzip.compress(chat("x" * (LIMIT + 1))))
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "request_too_large"
    cut = await post(http, gzip.compress(chat(TEXT))[:-5000])
    assert cut.status_code == 400
    assert cut.json()["error"] == {
        "message": "The gzip body is truncated.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_body",
    }
    packed = bytearray(gzip.compress(chat(TEXT)))
    packed[len(packed) // 2] ^= 0xFF
    corrupt = await post(http, bytes(packed))
    assert corrupt.status_code == 400
    assert corrupt.json()["error"]["message"].startswith("The gzip body is corrupt: ")
    members = gzip.compress(chat(TEXT)[:1000]) + gzip.compress(chat(TEXT)[1000:])
    whole = await post(http, members)  # several members, the second past the inline part
    assert whole.status_code == 200, whole.text
    assert stub.calls[-1].request.params.messages[0].text == TEXT
    assert threads.submitted == 4  # each of them, past its inline part


async def test_a_body_of_many_small_members_inflates_off_the_loop(
    http: httpx.AsyncClient, stub: StubRouter
) -> None:
    """Each gzip member costs the loop its own step, whatever little it holds: thousands of
    them (a few bytes each, well under the inline part once inflated) held it for half a second."""
    threads = HeldExecutor()
    threads.gate.set()
    asyncio.get_running_loop().set_default_executor(threads)
    body = chat("hi")
    members = b"".join(gzip.compress(body[i : i + 1]) for i in range(len(body)))
    answer = await post(http, gzip.compress(b"") * 50_000 + members)
    assert answer.status_code == 200, answer.text
    assert stub.calls[-1].request.params.messages[0].text == "hi"
    assert threads.submitted == 1
