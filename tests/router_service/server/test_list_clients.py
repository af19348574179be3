"""AdminService.ListClients (server/_clients.py): every configured client with its scopes, models
and limits, and what it used — its sliding minute against rpm / tpm, its token budgets by period,
its stored-response, cached-answer and conversation bytes against their quotas — from real
calls through the fake upstream (two replicas on Redis: tests/replicas/test_clients.py). Time
is a ManualClock: periods end where the test says."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import hash_key
from router_service.clock import ManualClock, SystemClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from router_service.responses import ENTRY_BYTES
from router_service.state import MemoryStateStore
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config
from tests.router_service.server.client_figures import (
    ALICE,
    ALICE_BUDGETS,
    ALICE_LIMITS,
    BOB,
    MIDNIGHT,
    NEW_MONTH,
    NOON,
    OPS,
    budgets,
    quota_of,
    stored,
)

pytestmark = pytest.mark.timeout(60)


def clients_config(fake: FakeUpstream, **sections: Any) -> dict[str, Any]:
    return guarded_config(
        fake.base_url,
        client("ops", OPS, scopes=["admin"]),
        client("alice", ALICE, models=["chain"], scopes=["chat"], **ALICE_LIMITS, **ALICE_BUDGETS),
        client("bob", BOB),
        **sections,
    )


async def listed(router: RouterHandle, key: str | None = OPS) -> dict[str, admin_pb.ClientStatus]:
    metadata = bearer(key) if key is not None else ()
    answer = await router.admin.ListClients(
        admin_pb.ListClientsRequest(), metadata=metadata, timeout=10
    )
    return {status.name: status for status in answer.clients}


async def spend(router: RouterHandle, key: str, calls: int) -> int:
    """Chat `calls` times; the tokens the upstream reported."""
    spent = 0
    for _ in range(calls):
        answer = await router.stub.Chat(chat(text="one two three"), metadata=bearer(key))
        spent += answer.completion.usage.total_tokens
    return spent


async def test_each_client_with_its_limits_and_what_it_used(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(NOON)
    router = await start_router(clients_config(fake), clock=clock)
    spent = await spend(router, ALICE, 3)
    assert spent > 0
    kept = await router.stub.StoreResponse(stored("resp_1"), metadata=bearer(ALICE))
    assert kept.stored
    size = stored("resp_1").response.ByteSize() + ENTRY_BYTES

    found = await listed(router)

    assert list(found) == ["ops", "alice", "bob"]  # in config order; open mode's is not there
    alice = found["alice"]
    assert (list(alice.scopes), list(alice.models)) == (["chat"], ["chain"])
    assert (alice.rpm, alice.tpm, alice.max_concurrent_streams) == (10, 5000, 2)
    assert (alice.minute_requests, alice.minute_tokens, alice.open_streams) == (3, spent, 0)
    assert budgets(alice) == [("day", 1000, spent, MIDNIGHT), ("month", 20000, spent, NEW_MONTH)]
    quota = router.runtime.config.responses.client_stored_bytes
    period_end = NOON + 3600  # responses.store_ttl_s: an hour by default, from 12:00 UTC
    assert quota_of(alice.stored_responses) == (size, quota, period_end)
    assert not alice.HasField("cached_answers")  # the cache is off
    assert not alice.anonymous
    bob = found["bob"]
    assert list(bob.scopes) == ["chat", "embed", "models"] and list(bob.models) == ["*"]
    for unset in ("rpm", "tpm", "max_concurrent_streams", "minute_requests", "minute_tokens"):
        assert not bob.HasField(unset), unset  # no limit: nothing counted, nothing to show
    assert not bob.HasField("open_streams") and not bob.budgets
    assert quota_of(bob.stored_responses) == (0, quota, period_end)


async def test_the_figures_follow_the_minute_and_the_periods(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(MIDNIGHT - 60)  # the start of the day's last minute
    router = await start_router(clients_config(fake), clock=clock)
    spent = await spend(router, ALICE, 2)
    clock.advance(75)  # a quarter into the new day's first minute: the last one weighs 3/4
    alice = (await listed(router))["alice"]
    assert (alice.minute_requests, alice.minute_tokens) == (1.5, spent * 0.75)
    assert budgets(alice) == [
        ("day", 1000, 0, MIDNIGHT + 86400),  # a new day: the count starts from zero
        ("month", 20000, spent, NEW_MONTH),  # the month goes on
    ]
    clock.advance(60)  # the minute of the calls is out of the sliding minute
    alice = (await listed(router))["alice"]
    assert (alice.minute_requests, alice.minute_tokens) == (0, 0)
    assert alice.HasField("minute_requests")  # counted, and nothing: not "not counted"


async def test_cached_answers_count_against_the_cache_quota(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    cache = {"enabled": True, "ttl_s": 600, "client_bytes": 100_000}
    config = clients_config(fake, cache=cache, responses={"store": False})
    router = await start_router(config, clock=ManualClock(NOON))
    await spend(router, ALICE, 1)
    await router.runtime.afterwork.drain()  # an answer is kept once its caller has it
    found = await listed(router)
    alice, bob = found["alice"], found["bob"]
    assert 0 < alice.cached_answers.used < 100_000
    assert quota_of(alice.cached_answers)[1:] == (100_000, NOON + 600)
    assert quota_of(bob.cached_answers) == (0, 100_000, NOON + 600)
    await spend(router, ALICE, 1)  # the same request: served from the cache, nothing more kept
    await router.runtime.afterwork.drain()
    assert (await listed(router))["alice"].cached_answers == alice.cached_answers
    assert not alice.HasField("stored_responses")  # responses.store: false


async def test_an_answer_the_store_has_no_room_for_counts_against_no_quota(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(NOON)
    store = MemoryStateStore(clock, document_bytes=2048)  # no room for a 3000-byte answer
    cache = {"enabled": True, "ttl_s": 600, "client_bytes": 100_000}
    config = clients_config(fake, cache=cache, responses={"store": False})
    router = await start_router(config, clock=clock, store=store)
    fake.state.set_scenario(Scenario(content="x" * 3000))
    await spend(router, ALICE, 1)
    await router.runtime.afterwork.drain()
    assert (await listed(router))["alice"].cached_answers.used == 0  # nothing kept


async def test_a_caller_without_the_admin_scope_is_refused(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(clients_config(fake), clock=ManualClock(NOON))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await listed(router, ALICE)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "needs the `admin` scope" in (refused.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await listed(router, None)
    assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_no_key_material_is_shown(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(clients_config(fake), clock=ManualClock(NOON))
    answer = await router.admin.ListClients(admin_pb.ListClientsRequest(), metadata=bearer(OPS))
    text = answer.SerializeToString()
    for key in (OPS, ALICE, BOB):
        assert key.encode() not in text and hash_key(key).encode() not in text
        # Its keys by fingerprint only (12 hex digits of the hash, as every key is shown).
        assert hash_key(key)[:13].encode() not in text
        assert fingerprint(key).encode() in text


async def test_open_mode_lists_anonymous_as_the_metrics_label_it(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = clients_config(fake)
    config["auth"]["open"] = True
    router = await start_router(config, clock=ManualClock(NOON))
    assert (await router.stub.StoreResponse(stored("resp_open"))).stored  # no key: anonymous
    found = await listed(router)
    assert list(found) == ["ops", "alice", "bob", "anonymous"]
    anonymous = found["anonymous"]
    assert anonymous.anonymous and set(anonymous.scopes) >= {"admin", "chat", "route"}
    assert not anonymous.HasField("rpm") and not anonymous.budgets
    size = stored("resp_open").response.ByteSize() + ENTRY_BYTES
    assert anonymous.stored_responses.used == size
    assert found["alice"].stored_responses.used == 0  # the anonymous callers' quota is their own


class NoonForever(SystemClock):
    """Real waits (a stream's timers run) on a wall clock that stays at noon."""

    def now(self) -> float:
        return NOON


async def test_open_streams_are_counted(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(clients_config(fake), clock=NoonForever())
    fake.state.set_scenario(Scenario(stall_after_chunks=3))
    call = router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE))
    async for _ in call:
        break  # open: its first event came
    assert (await listed(router))["alice"].open_streams == 1
    call.cancel()
    assert await router.server._auth.calls.settle(5.0) == 0
    assert (await listed(router))["alice"].open_streams == 0


class CountingStore(MemoryStateStore):
    """Counts the calls that read client state."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.reads: list[str] = []

    async def read_buckets(self, names: Sequence[str]) -> list[dict[int, dict[str, float]]]:
        self.reads.append("read_buckets")
        return await super().read_buckets(names)

    async def rates(self, resources: Sequence[str]) -> list[Any]:
        self.reads.append("rates")
        return await super().rates(resources)

    async def held(self, resources: Sequence[str]) -> list[int]:
        self.reads.append("held")
        return await super().held(resources)


async def test_all_clients_are_read_in_two_store_calls(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(NOON)
    many = [
        client(f"app-{i}", f"sk-app-{i}-0123", **ALICE_LIMITS, **ALICE_BUDGETS) for i in range(8)
    ]
    store = CountingStore(clock)
    config = guarded_config(fake.base_url, client("ops", OPS, scopes=["admin"]), *many)
    router = await start_router(config, clock=clock, store=store)
    store.reads.clear()
    assert len(await listed(router)) == 9
    # The memory store's `read` is its separate calls: one of each kind, whatever the clients.
    assert sorted(store.reads) == ["held", "rates", "read_buckets"]


async def test_conversation_bytes_count_against_their_quota(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(NOON)
    config = clients_config(fake, conversations={"ttl_s": 600, "client_bytes": 100_000})
    router = await start_router(config, clock=clock)
    request = pb.CreateConversationRequest(items_json=['{"role": "user", "content": "hi"}'])
    made = await router.stub.CreateConversation(request, metadata=bearer(ALICE))
    written = made.ByteSize()  # about: the record is the conversation and its items
    alice = (await listed(router))["alice"]
    used, quota, resets = quota_of(alice.conversations)
    assert (quota, resets) == (100_000, NOON + 600)
    assert ENTRY_BYTES < used <= written + ENTRY_BYTES + 16
    assert quota_of((await listed(router))["bob"].conversations) == (0, 100_000, NOON + 600)


async def test_deleting_conversation_items_is_neither_counted_nor_refused_at_the_quota(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Two replicas on one store: the second's quota (1 byte) is full from the first's write,
    # yet deleting an item (what frees room) is not refused there, nor counted anywhere.
    clock = ManualClock(NOON)
    store = MemoryStateStore(clock)
    roomy, full = [
        await start_router(
            clients_config(fake, conversations={"ttl_s": 600, "client_bytes": quota}),
            clock=clock,
            store=store,
        )
        for quota in (100_000, 1)
    ]
    items = ['{"role": "user", "content": "hi"}', '{"role": "user", "content": "bye"}']
    request = pb.CreateConversationRequest(items_json=items)
    made = await roomy.stub.CreateConversation(request, metadata=bearer(ALICE))
    used = quota_of((await listed(roomy))["alice"].conversations)[0]
    change = pb.UpdateConversationRequest(id=made.conversation.id, metadata_json='{"k": "v"}')
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await full.stub.UpdateConversation(change, metadata=bearer(ALICE))
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED

    first = made.items[0].id
    delete = pb.UpdateConversationRequest(id=made.conversation.id, delete_item_ids=[first])
    await full.stub.UpdateConversation(delete, metadata=bearer(ALICE))

    load = pb.LoadConversationRequest(id=made.conversation.id)
    loaded = await roomy.stub.LoadConversation(load, metadata=bearer(ALICE))
    assert [item.id for item in loaded.items] == [made.items[1].id]
    assert quota_of((await listed(roomy))["alice"].conversations)[0] == used
