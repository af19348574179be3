"""An upstream reporting negative usage (a buggy compatible server) refunds nothing: the call
counts as one that reported none (its estimate stays counted in the client's budget and the
key's tpm), so an upstream cannot give its callers tokens back."""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web

from tests.conftest import RouterHandle, StartRouter
from tests.helpers import serve_app
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config

ALICE = "sk-alice-negative-0123"
NEGATIVE = {"prompt_tokens": -1000, "completion_tokens": 2, "total_tokens": -998}


async def _answer(request: web.Request) -> web.Response:
    body: dict[str, Any] = await request.json()
    return web.json_response(
        {
            "id": "chatcmpl-negative",
            "object": "chat.completion",
            "created": 1,
            "model": body.get("model", "m"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "stop",
                }
            ],
            "usage": NEGATIVE,
        }
    )


async def calls_until_refused(router: RouterHandle) -> tuple[int, grpc.aio.AioRpcError]:
    for calls in range(1, 40):
        try:
            await router.stub.Chat(chat(text="one two three"), metadata=bearer(ALICE))
        except grpc.aio.AioRpcError as exc:
            return calls, exc
    raise AssertionError("a negative usage refunded the budget: never refused")


async def test_negative_usage_gives_no_tokens_back(start_router: StartRouter) -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}", _answer)
    async with serve_app(app) as url:
        config = guarded_config(url, client("alice", ALICE, tokens_per_day=60))
        router = await start_router(config)
        calls, refused = await calls_until_refused(router)
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert calls > 1  # the estimates, not the reports, used it up
