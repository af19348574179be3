"""A blocking client closed by one thread while others are making calls on it: each call under
way ends with a typed error (RouterError CANCELLED, as a call its close cancels), never with
grpc's closed-channel ValueError or the client's "has been closed" RuntimeError, which are for a
call made after the close. Real threads, a real grpc.aio server on loopback."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, ItemsView, Iterator, Mapping
from contextlib import contextmanager

import grpc
import pytest

from clients import RouterError, SyncRouterClient
from clients.switchboard.v1 import (
    admin_service_pb2_grpc,
    router_service_pb2,
    router_service_pb2_grpc,
)
from tests.clients.fake_router import SERVER_OPTIONS, FakeRouter, chat_request
from tests.helpers import serve_grpc

pytestmark = pytest.mark.timeout(120)

ROUNDS, THREADS, WAIT_S = 30, 6, 10.0
SyncCall = Callable[[SyncRouterClient, Mapping[str, str]], object]


class _Read(Mapping[str, str]):
    """A call's metadata that knows whether the client read it: once it has, the call was
    taken (the client was open), and a close since is no refusal of a new call."""

    def __init__(self) -> None:
        self.read = False

    def __getitem__(self, key: str) -> str:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 1  # not empty: it is read

    def items(self) -> ItemsView[str, str]:
        self.read = True
        return {"x-call": "1"}.items()


def _chat(client: SyncRouterClient, metadata: Mapping[str, str]) -> object:
    return client.chat(chat_request("m"), timeout=WAIT_S, metadata=metadata)


def _list_models(client: SyncRouterClient, metadata: Mapping[str, str]) -> object:
    return client.list_models(timeout=WAIT_S, metadata=metadata)


def _chat_stream(client: SyncRouterClient, metadata: Mapping[str, str]) -> object:
    request = router_service_pb2.ChatStreamRequest(params=chat_request("m").params)
    with client.chat_stream(request, timeout=WAIT_S, metadata=metadata) as stream:
        return list(stream)


@contextmanager
def _switching_often() -> Iterator[None]:
    """Threads switch at every few bytecodes: the race is the usual case, not a rare one."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _calls_until_closed(
    client: SyncRouterClient,
    call: SyncCall,
    answered: threading.Semaphore,
    closing: threading.Event,
) -> list[str]:
    """Call until the client is being closed; how each call the client took ended."""
    endings = []
    while not closing.is_set():
        metadata = _Read()
        try:
            call(client, metadata)
        except RuntimeError as exc:
            if metadata.read:  # taken, then closed: not a call made on a closed client
                endings.append(f"{type(exc).__name__}: {exc}")
        except RouterError as exc:
            endings.append(f"RouterError {exc.grpc_code.name} {exc.reason}")
        except Exception as exc:  # what this test is about: nothing else may come out
            endings.append(f"{type(exc).__name__}: {exc}")
        else:
            endings.append("answered")
            answered.release()
    return endings


def _round(target: str) -> set[str]:
    client = SyncRouterClient(target)
    calls = [_chat, _list_models, _chat_stream] * (THREADS // 3)
    answered, closing = threading.Semaphore(0), threading.Event()
    endings: list[list[str]] = [[] for _ in calls]

    def run(i: int) -> None:
        endings[i] = _calls_until_closed(client, calls[i], answered, closing)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for _ in threads:  # each thread's calls are under way
        assert answered.acquire(timeout=WAIT_S)
    closing.set()
    client.close()
    for thread in threads:
        thread.join(WAIT_S)
        assert not thread.is_alive()
    for call in set(calls):  # a call made after the close is a misuse, said as such
        with pytest.raises(RuntimeError, match="has been closed"):
            call(client, {})
    return {ending for thread_endings in endings for ending in thread_endings}


async def test_a_close_racing_calls_in_other_threads_ends_them_cancelled() -> None:
    fake = FakeRouter("a")
    servicers = (
        (router_service_pb2_grpc.add_RouterServiceServicer_to_server, fake),
        (admin_service_pb2_grpc.add_AdminServiceServicer_to_server, fake),
    )
    seen: set[str] = set()
    async with serve_grpc(*servicers, options=SERVER_OPTIONS) as target:
        with _switching_often():
            for _ in range(ROUNDS):
                seen |= await asyncio.to_thread(_round, target)
    assert seen <= {"answered", f"RouterError {grpc.StatusCode.CANCELLED.name} CANCELLED"}
