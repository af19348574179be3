"""A stream refused its caller's last slot (`max_concurrent_streams`) waits up to 0.5 s, on the
router's clock, for one of the caller's streams to end in this process (a cancel the router had
not seen yet), and is served then; else it is refused RESOURCE_EXHAUSTED. Driven by a
ManualClock: what the wait sees, not how long it took."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest

from clients import details_from_rpc_error
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import SlotGrant, SlotRequest
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.router_service.auth.helpers import bearer, chat_stream, client, guarded_config

pytestmark = pytest.mark.timeout(60)

ALICE = "sk-alice-0123456789"
SLOTS = ["client:alice:streams"]
REOPEN_WAIT_S = 0.5  # README: auth.clients' max_concurrent_streams


async def _router(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> RouterHandle:
    config = guarded_config(fake.base_url, client("alice", ALICE, max_concurrent_streams=1))
    return await start_router(config, clock=clock)


async def _held_open(router: RouterHandle, fake: FakeUpstream) -> grpc.aio.Call:
    """Alice's one stream, open and held by a stalled upstream (its slot taken)."""
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    first = router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE))
    async for message in first:
        if message.WhichOneof("event") == "chunk":
            break
    fake.state.set_scenario(Scenario())
    return first


async def _events(call: grpc.aio.UnaryStreamCall) -> list[str]:
    return [str(message.WhichOneof("event")) async for message in call]


async def _served_as_the_clock_stands(stream: asyncio.Future[list[str]]) -> None:
    """`stream` served, woken by its caller's stream's end, the router's clock not moved: a
    wait's end asks once more (a replica's stream ending elsewhere), so a served stream after
    the clock moved would not tell a wake-up from that last ask."""

    async def served() -> bool:
        return stream.done()

    await eventually(served, what="the stream answered, the router's clock where it was")
    assert (await stream)[-1] == "summary"


def _waiting(clock: ManualClock, since: float | None = None) -> bool:
    """Whether a stream refused at `since` (the clock's now) waits for a slot: its window open
    on the router's clock."""
    since = clock.monotonic() if since is None else since
    return any(w.when() == since + REOPEN_WAIT_S for w in clock.windows)


async def _until_waiting(clock: ManualClock, waits: bool = True) -> None:
    async def seen() -> bool:
        return _waiting(clock) is waits

    await eventually(seen, what=f"a stream waiting for a slot: {waits}")


async def test_a_stream_refused_while_another_ends_is_served(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The caller cancelled its stream and opened another before the router saw the cancel:
    the new one, refused the slot, waits on the router's clock (which does not move) and is
    served once the cancelled one ends."""
    clock = ManualClock()
    router = await _router(fake, start_router, clock)
    first = await _held_open(router, fake)
    second = asyncio.ensure_future(
        _events(router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE)))
    )
    await _until_waiting(clock)
    first.cancel()
    assert (await second)[-1] == "summary"
    assert await router.runtime.store.held(SLOTS) == [0]


async def test_a_stream_no_end_frees_a_slot_for_is_refused_after_the_wait(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Nothing ends within the wait: RESOURCE_EXHAUSTED once the router's clock has moved the
    wait on, the slot still the open stream's; one whose caller cancels it while it waits
    leaves nothing waiting behind; the slot freed, the next stream is served at once."""
    clock = ManualClock()
    router = await _router(fake, start_router, clock)
    first = await _held_open(router, fake)
    second = asyncio.ensure_future(
        _events(router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE)))
    )
    await _until_waiting(clock)
    since = clock.monotonic()
    clock.advance(REOPEN_WAIT_S - 0.1)
    await asyncio.sleep(0)  # one turn of the loop: a window due would end now
    assert _waiting(clock, since) and not second.done()  # its end: 0.1 s on
    clock.advance(0.1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await second
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "concurrent streams" in details_from_rpc_error(caught.value).message
    assert await router.runtime.store.held(SLOTS) == [1]
    third = router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE))
    waiting = asyncio.ensure_future(_events(third))
    await _until_waiting(clock)
    third.cancel()
    await _until_waiting(clock, waits=False)  # the router's waiter gone with its call
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    first.cancel()

    async def released() -> bool:
        return await router.runtime.store.held(SLOTS) == [0]

    await eventually(released, what="the open stream's slot released after its cancel")
    fourth = router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE))
    assert (await _events(fourth))[-1] == "summary"


class _SlowAnswers:
    """The store's answers to a stream slot's asks held back (a shared store's round trip,
    Redis's), deterministically: the first ask answered `refused` (or granted), past `after`
    such, waits for `answer`, having said so (`asked`)."""

    def __init__(
        self, router: RouterHandle, monkeypatch: pytest.MonkeyPatch, refused: bool, after: int = 0
    ):
        self.asked, self.answer = asyncio.Event(), asyncio.Event()
        self.after = after
        store = router.runtime.store
        acquire = store.acquire

        async def slow(request: SlotRequest) -> SlotGrant:
            grant = await acquire(request)
            held = request.resource in SLOTS and (grant.lease_id is None) is refused
            if held and self.after:
                self.after -= 1
            elif held and not self.asked.is_set():
                self.asked.set()
                await self.answer.wait()
            return grant

        monkeypatch.setattr(store, "acquire", slow)


async def test_a_stream_ended_while_the_store_refused_its_slot_is_not_missed(
    fake: FakeUpstream, start_router: StartRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's stream ended while the store's refusal of the new one's slot was on its
    way: the new one, which had not begun to wait yet, is served on that end (it waited for
    another end, which never came, and was refused)."""
    clock = ManualClock()
    router = await _router(fake, start_router, clock)
    first = await _held_open(router, fake)
    # Past the stream's first refusal: its wait's own ask (made listening for an end already).
    store = _SlowAnswers(router, monkeypatch, refused=True, after=1)
    second = asyncio.ensure_future(
        _events(router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE)))
    )
    await store.asked.wait()  # refused, the answer not yet back
    first.cancel()

    async def released() -> bool:
        return await router.runtime.store.held(SLOTS) == [0]

    await eventually(released, what="the first stream's slot released after its cancel")
    store.answer.set()

    await _served_as_the_clock_stands(second)


async def test_a_slot_granted_as_the_wait_ends_is_the_streams(
    fake: FakeUpstream, start_router: StartRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A waiting stream's caller's stream ended, and the store's grant of the freed slot was on
    its way as the wait ran out: the stream is served on it. (The wait's end cut the store's
    answer: the stream was refused, and the slot granted held until its TTL, the caller's
    streams refused meanwhile.)"""
    clock = ManualClock()
    router = await _router(fake, start_router, clock)
    first = await _held_open(router, fake)
    second = asyncio.ensure_future(
        _events(router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE)))
    )
    await _until_waiting(clock)
    store = _SlowAnswers(router, monkeypatch, refused=False)
    first.cancel()
    await store.asked.wait()  # granted, the answer not yet back
    clock.advance(REOPEN_WAIT_S)
    for _ in range(5):
        await asyncio.sleep(0)  # turns of the loop: a window due ends in them
    store.answer.set()
    assert (await second)[-1] == "summary"
    assert await router.runtime.store.held(SLOTS) == [0]


async def test_a_stream_opened_before_a_reload_ending_frees_a_slot_after_it(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The config reloaded while the caller's stream was open: a stream opened after the
    reload, refused the slot the earlier one holds, is served when that one ends (the wait
    listened to the reloaded config's gate, which the earlier stream's end never reached)."""
    clock = ManualClock()
    router = await _router(fake, start_router, clock)
    first = await _held_open(router, fake)
    config = guarded_config(fake.base_url, client("alice", ALICE, max_concurrent_streams=1))
    config["streams"] = {"heartbeat_s": 9}
    await router.server.reload(SwitchboardConfig.model_validate(config))
    second = asyncio.ensure_future(
        _events(router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE)))
    )
    await _until_waiting(clock)
    first.cancel()

    async def released() -> bool:
        return await router.runtime.store.held(SLOTS) == [0]

    await eventually(released, what="the first stream's slot released after its cancel")

    await _served_as_the_clock_stands(second)
