"""Router addresses given as host names in a list (``RouterClient(["router-a:50051", ...])``),
through both clients and a real router on loopback: looked up at first use, the async client's
off its event loop (a slow DNS stalled every task), and a name that cannot be looked up is a
`RouterError` UNAVAILABLE naming it (it was a raw `socket.gaierror`, from the constructor)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from clients import CallStream, RouterClient, RouterError, SyncRouterClient
from clients.switchboard.v1 import media_pb2, router_service_pb2
from tests.clients.fake_router import serving, stream_request
from tests.conftest import RouterHandle
from tests.router_service.auth.helpers import chat

pytestmark = pytest.mark.timeout(60)

BAD = "no-such-host.invalid:1"


def _recorded_lookups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The threads `localhost` is looked up on (the real lookup, watched)."""
    threads: list[int] = []
    real = socket.getaddrinfo

    def watched(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "localhost":
            threads.append(threading.get_ident())
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", watched)
    return threads


async def test_the_async_client_looks_host_names_up_off_its_event_loop(
    router: RouterHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up_on = _recorded_lookups(monkeypatch)
    port = router.server.address.rpartition(":")[2]
    addresses = [f"localhost:{port}", router.server.address]
    entered = RouterClient(addresses)
    called = RouterClient(addresses)  # opened by its first call, no `async with`
    assert looked_up_on == []  # not when made
    assert entered.target == f"localhost:{port},{router.server.address}"
    async with entered:
        assert entered.target.startswith("ipv4:127.0.0.1:")
        assert (await entered.chat(chat())).route.deployment == "alpha/model-a"
    assert (await called.chat(chat())).route.deployment == "alpha/model-a"
    await called.aclose()
    assert len(looked_up_on) == 2
    assert threading.get_ident() not in looked_up_on


def _refused(error: RouterError) -> None:
    assert error.details.code is grpc.StatusCode.UNAVAILABLE
    assert BAD in error.details.message


async def test_a_host_name_that_cannot_be_looked_up_is_a_router_error_naming_it(
    router: RouterHandle,
) -> None:
    addresses = [BAD, router.server.address]
    client = RouterClient(addresses)  # made: nothing looked up yet
    with pytest.raises(RouterError) as entering:
        await client.__aenter__()
    _refused(entering.value)
    with pytest.raises(RouterError) as calling:  # still unopened: tried again
        await client.chat(chat())
    _refused(calling.value)
    await client.aclose()

    def sync_calls() -> list[RouterError]:
        sync = SyncRouterClient(addresses)
        errors = []
        for call in (sync.__enter__, lambda: sync.chat(chat())):
            with pytest.raises(RouterError) as raised:
                call()
            errors.append(raised.value)
        sync.close()
        return errors

    for error in await asyncio.to_thread(sync_calls):
        _refused(error)


def _first_streams() -> list[Callable[[RouterClient], CallStream[Any]]]:
    """Each kind of stream the async client makes: a chat's, a media's and a read's."""
    media = router_service_pb2.MediaStreamRequest(params=media_pb2.MediaParams(model="m"))
    resume = router_service_pb2.ResumeResponseRequest(id="resp_1")
    return [
        lambda client: client.chat_stream(stream_request()),
        lambda client: client.media_stream(media),
        lambda client: client.resume_response(resume),
    ]


async def test_a_stream_that_is_the_first_call_looks_host_names_up_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unary calls and `async with` looked the names up in a thread; a stream as the first
    call, whose making is no coroutine, looked them up on the event loop, stalling it."""
    looked_up_on = _recorded_lookups(monkeypatch)
    async with serving("a") as (fake, address):
        port = address.rpartition(":")[2]
        for first_stream in _first_streams():
            client = RouterClient([f"localhost:{port}", address])  # opened by its stream
            async with first_stream(client) as stream:
                assert [message async for message in stream]
            await client.aclose()
        assert fake.calls == 3
    assert len(looked_up_on) == 3
    assert threading.get_ident() not in looked_up_on


async def test_a_first_stream_refuses_at_once_what_an_opened_client_refuses() -> None:
    client = RouterClient([BAD, "127.0.0.1:1"])
    with pytest.raises(TypeError, match="ChatStream takes a"):
        client.chat_stream(router_service_pb2.ChatRequest())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metadata key 'Bad Key'"):
        client.chat_stream(stream_request(), metadata={"Bad Key": "v"})
    stream = client.chat_stream(stream_request())  # its name is looked up at the first read
    with pytest.raises(RouterError) as reading:
        await anext(stream)
    _refused(reading.value)
    await stream.aclose()
    closed = client.chat_stream(stream_request())
    await closed.aclose()  # closed before its first read: nothing looked up, nothing sent
    with pytest.raises(StopAsyncIteration):
        await anext(closed)
    await client.aclose()
