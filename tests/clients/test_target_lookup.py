"""Router addresses given as host names in a list (``RouterClient(["router-a:50051", ...])``),
through both clients and a real router on loopback: looked up at first use, the async client's
off its event loop (a slow DNS stalled every task), and a name that cannot be looked up is a
`RouterError` UNAVAILABLE naming it (it was a raw `socket.gaierror`, from the constructor)."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import grpc
import pytest

from clients import RouterClient, RouterError, SyncRouterClient
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
