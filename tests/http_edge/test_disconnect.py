"""`unless_disconnected` (http_edge/_disconnect.py): a router call runs in the request's own task,
with the connection telling of the client going away; a disconnect cancels the call (see
test_edge_chat.py for the end-to-end cases), a finished call is left alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from clients.switchboard.v1 import router_service_pb2 as rs
from http_edge._disconnect import unless_disconnected
from http_edge._errors import EdgeError
from tests.helpers import counted_tasks
from tests.http_edge.edge_messages import completion, route
from tests.http_edge.harness import StubRouter

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": False}


async def test_a_router_call_gets_no_task_of_its_own_nor_a_watcher(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def on_chat(request: rs.ChatRequest, context: Any) -> rs.ChatResponse:
        return rs.ChatResponse(completion=completion("Hello!"), route=route())

    stub.on_chat = on_chat
    with counted_tasks() as made:
        response = await http.post("/v1/chat/completions", json=BODY)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Hello!"
    assert made.count("_disconnected") == 0  # the connection tells of a disconnect
    # The router call ran in the request's task, not in one made for it.
    assert not [name for name in made if name.startswith("RouterClient.")]


class _GoneClient:
    """What `Request.receive` gives once the client has gone, on a server other than the edge's
    own (a watcher task then waits for the disconnect)."""

    scope: dict[str, Any] = {}

    async def receive(self) -> dict[str, str]:
        return {"type": "http.disconnect"}


async def _disconnected_work(raises: type[BaseException] | None) -> str:
    try:
        await asyncio.Event().wait()  # a router call that only a cancellation ends
    except asyncio.CancelledError:
        if raises is not None:
            raise raises("the call ended its own way") from None
        raise
    return "unreachable"


@pytest.mark.parametrize("raises", [None, RuntimeError], ids=["cancelled", "own-error"])
async def test_a_disconnect_cancels_the_call_and_leaves_the_task_uncancelled(
    raises: type[BaseException] | None,
) -> None:
    task = asyncio.current_task()
    assert task is not None
    request: Any = _GoneClient()
    with pytest.raises(EdgeError if raises is None else raises) as caught:
        await unless_disconnected(request, _disconnected_work(raises))
    if raises is None:
        assert isinstance(caught.value, EdgeError) and caught.value.status == 499
    # The cancellation was the disconnect's, not this task's caller's: nothing is left pending.
    assert task.cancelling() == 0
