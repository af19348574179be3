"""What each call takes beside its request (a timeout, metadata), given to both clients over a
real channel to a real router: what gRPC cannot send is refused before the call, alike in both,
and what it can is sent."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from clients import RouterClient, SyncRouterClient
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import chat, chat_stream, client, guarded_config

pytestmark = pytest.mark.timeout(60)


async def _async_answers(target: str, seconds: float) -> list[str | None]:
    async with RouterClient(target) as client:
        answer = await client.chat(chat(), timeout=seconds)
        async with client.chat_stream(chat_stream(), timeout=seconds) as stream:
            kinds = [event.WhichOneof("event") async for event in stream]
    return [answer.route.deployment, kinds[-1]]


def _sync_answers(target: str, timeout: float) -> list[str | None]:
    with SyncRouterClient(target) as client:
        answer = client.chat(chat(), timeout=timeout)
        with client.chat_stream(chat_stream(), timeout=timeout) as stream:
            kinds = [event.WhichOneof("event") for event in stream]
    return [answer.route.deployment, kinds[-1]]


@pytest.mark.parametrize("seconds", [math.inf, 1e12])
async def test_a_timeout_past_what_grpc_can_count_is_no_deadline(
    router: RouterHandle, seconds: float
) -> None:
    # gRPC counts a deadline in int64 nanoseconds since the epoch (to the year 2262): past it,
    # the deadline wrapped round into the past, and the call failed at once, DEADLINE_EXCEEDED.
    target = router.server.address
    assert await _async_answers(target, seconds) == ["alpha/model-a", "summary"]
    assert await asyncio.to_thread(_sync_answers, target, seconds) == [
        "alpha/model-a",
        "summary",
    ]


async def test_a_default_timeout_past_what_grpc_can_count_is_no_deadline(
    router: RouterHandle,
) -> None:
    async with RouterClient(router.server.address, default_timeout=math.inf) as client:
        assert (await client.chat(chat())).route.deployment == "alpha/model-a"

    def sync_call() -> str:
        with SyncRouterClient(router.server.address, default_timeout=math.inf) as client:
            return client.chat(chat()).route.deployment

    assert await asyncio.to_thread(sync_call) == "alpha/model-a"


async def test_a_nan_timeout_is_refused(router: RouterHandle) -> None:
    # It expired every call at once (DEADLINE_EXCEEDED), as if the router were slow.
    async with RouterClient(router.server.address) as client:
        with pytest.raises(ValueError, match="timeout"):
            await client.chat(chat(), timeout=math.nan)
        with pytest.raises(ValueError, match="timeout"):
            client.chat_stream(chat_stream(), timeout=math.nan)
    with SyncRouterClient(router.server.address) as sync:
        with pytest.raises(ValueError, match="timeout"):
            sync.chat(chat(), timeout=math.nan)
    for client_type in (RouterClient, SyncRouterClient):
        with pytest.raises(ValueError, match="default_timeout"):
            client_type(router.server.address, default_timeout=math.nan)


ALICE = "sk-alice-arguments"


@pytest.fixture
async def guarded(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(guarded_config(fake.base_url, client("alice", ALICE)))


async def test_a_capitalised_metadata_key_is_sent_as_grpc_keys_are(guarded: RouterHandle) -> None:
    # grpc-go and grpc-java lower-case metadata keys; Python's grpc failed the call instead
    # (the async client's unary calls with grpc's internal ExecuteBatchError, the others
    # INTERNAL "Invalid metadata", an HTTP 500), here with the caller's own credentials, which
    # win over the client's api_key.
    metadata = [("Authorization", f"Bearer {ALICE}"), ("X-Request-Id", "req-1")]
    target = guarded.server.address
    async with RouterClient(target, api_key="sk-not-alice") as client:
        answer = await client.chat(chat(), metadata=metadata, timeout=30)
        async with client.chat_stream(chat_stream(), metadata=metadata, timeout=30) as stream:
            kinds = [event.WhichOneof("event") async for event in stream]
    assert [answer.route.deployment, kinds[-1]] == ["alpha/model-a", "summary"]

    def sync_call() -> str:
        with SyncRouterClient(target, api_key="sk-not-alice") as sync:
            return sync.chat(chat(), metadata=metadata, timeout=30).route.deployment

    assert await asyncio.to_thread(sync_call) == "alpha/model-a"


@pytest.mark.parametrize("key", [f"{ALICE}\n", "sk-alice-é"])
def test_an_api_key_grpc_cannot_send_is_refused_without_showing_it(key: str) -> None:
    # A key read from a file with its line break failed every call, the async client's unary
    # ones with grpc's internal ExecuteBatchError (and grpc logged the header).
    for client_type in (RouterClient, SyncRouterClient):
        with pytest.raises(ValueError, match="api_key") as refused:
            client_type("127.0.0.1:1", api_key=key)
        assert "alice" not in str(refused.value)


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ([("x-request-id", "a\nb")], "'x-request-id'"),
        ([("authorization", "Bearer sk-é")], "'authorization'"),
        ([("x request id", "a")], "'x request id'"),
        ([("", "a")], "''"),
        # A value given as bytes (grpc takes them for any key) is checked as a str is: it
        # failed the async client's unary calls with grpc's internal ExecuteBatchError.
        ([("x-request-id", b"a\nb")], "'x-request-id'"),
        ([("x-request-id", b"\xff")], "'x-request-id'"),
    ],
)
async def test_metadata_grpc_cannot_send_is_refused_by_its_key(
    router: RouterHandle, metadata: list[tuple[str, str]], named: str
) -> None:
    target = router.server.address
    async with RouterClient(target) as client:
        with pytest.raises(ValueError, match=named) as refused:
            await client.chat(chat(), metadata=metadata)
        assert "sk-" not in str(refused.value)
        with pytest.raises(ValueError, match=named):
            client.chat_stream(chat_stream(), metadata=metadata)
    with SyncRouterClient(target) as sync, pytest.raises(ValueError, match=named):
        sync.chat(chat(), metadata=metadata)


async def test_a_key_sent_before_still_has_its_value_checked(router: RouterHandle) -> None:
    # Keys once found sendable are not checked again (the edge's every call pays less): their
    # values still are, and the same key capitalised is still sent lower-cased.
    target = router.server.address
    async with RouterClient(target) as client:
        sent = [("x-checked-again", "fine")]
        assert (await client.chat(chat(), metadata=sent, timeout=30)).route.deployment
        with pytest.raises(ValueError, match="'x-checked-again'"):
            await client.chat(chat(), metadata=[("x-checked-again", "a\nb")])
        with pytest.raises(ValueError, match="'x-checked-again'"):
            client.chat_stream(chat_stream(), metadata=[("x-checked-again", "é")])
        capitalised = [("X-Checked-Again", "fine")]
        assert (await client.chat(chat(), metadata=capitalised, timeout=30)).route.deployment


async def test_a_binary_key_takes_any_bytes_in_both_clients(router: RouterHandle) -> None:
    # A `-bin` key's value is bytes gRPC encodes itself, not text: none is refused, and its
    # key is lower-cased as any other.
    metadata: list[tuple[str, Any]] = [("X-Trace-Bin", b"\x00\n\xff")]
    async with RouterClient(router.server.address) as client:
        answer = await client.chat(chat(), metadata=metadata, timeout=30)
    assert answer.route.deployment == "alpha/model-a"

    def sync_call() -> str:
        with SyncRouterClient(router.server.address) as sync:
            return sync.chat(chat(), metadata=metadata, timeout=30).route.deployment

    assert await asyncio.to_thread(sync_call) == "alpha/model-a"


@pytest.mark.parametrize(
    ("arguments", "error", "named"),
    [
        # 0 failed every call RESOURCE_EXHAUSTED, a request "larger than max (N vs. 0)"; grpc
        # read -1 as no limit at all.
        ({"max_message_bytes": 0}, ValueError, "max_message_bytes"),
        ({"max_message_bytes": -1}, ValueError, "max_message_bytes"),
        ({"max_message_bytes": 1.5}, TypeError, "max_message_bytes"),
        # Past gRPC's int32 channel argument: every call failed with grpc's OverflowError
        # ("value too large to convert to int"), naming no argument, as its channel was made.
        ({"max_message_bytes": 2**31}, ValueError, "max_message_bytes"),
        # A deadline already past: every call failed DEADLINE_EXCEEDED, as if the router hung.
        ({"default_timeout": -1}, ValueError, "default_timeout"),
        ({"default_timeout": 0}, ValueError, "default_timeout"),
        ({"default_timeout": "30"}, TypeError, "default_timeout"),
        # An AttributeError out of the printable check, naming no argument.
        ({"api_key": b"sk-alice"}, TypeError, "api_key"),
        ({"api_key": 123}, TypeError, "api_key"),
    ],
)
def test_client_arguments_that_fail_every_call_are_refused_when_it_is_made(
    arguments: dict[str, Any], error: type[Exception], named: str
) -> None:
    for client_type in (RouterClient, SyncRouterClient):
        with pytest.raises(error, match=named) as refused:
            client_type("127.0.0.1:1", **arguments)
        assert "alice" not in str(refused.value)


@pytest.mark.parametrize("key", ["x-trace-bin", "X-Trace-Bin"])
async def test_a_binary_key_given_text_is_refused_by_its_key(
    router: RouterHandle, key: str
) -> None:
    # grpc failed the call with its own TypeError ("Expected bytes, got str"), the async
    # client's unary calls inside its internal ExecuteBatchError; a key once sent with bytes
    # was not checked again. Refused, not encoded: which bytes a str means (UTF-8 text, base64
    # already encoded) is the caller's to say.
    target = router.server.address
    async with RouterClient(target) as client:
        sent: list[tuple[str, Any]] = [(key, b"\x00\xff")]
        assert (await client.chat(chat(), metadata=sent, timeout=30)).route.deployment
        text: list[tuple[str, Any]] = [(key, "abc")]
        with pytest.raises(ValueError, match=r"'x-trace-bin'.*bytes"):
            await client.chat(chat(), metadata=text)
        with pytest.raises(ValueError, match=r"'x-trace-bin'.*bytes"):
            client.chat_stream(chat_stream(), metadata=text)
    with SyncRouterClient(target) as sync, pytest.raises(ValueError, match="'x-trace-bin'"):
        sync.chat(chat(), metadata=text)
