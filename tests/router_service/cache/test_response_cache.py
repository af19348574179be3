"""The response cache over a real gRPC channel and the fake upstream: what is kept, for whom,
for how long, and what the caller is told. Time is a ManualClock where expiry matters."""

from __future__ import annotations

import base64
import struct
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config
from tests.router_service.cache.helpers import entry_bytes

HIT = routing_pb2.CACHE_STATUS_HIT
MISS = routing_pb2.CACHE_STATUS_MISS
BYPASS = routing_pb2.CACHE_STATUS_BYPASS
ALICE = "sk-alice-cache-0123"
BOB = "sk-bob-cache-0123"


def cached_config(fake: FakeUpstream, **cache: Any) -> dict[str, Any]:
    return base_config(fake.base_url, cache={"enabled": True, **cache})


def upstream_calls(fake: FakeUpstream) -> int:
    return len(fake.state.calls())


def with_mode(request: Any, mode: routing_pb2.CacheMode.ValueType) -> Any:
    request.routing.cache = mode
    return request


async def events(router: RouterHandle, request: pb.ChatStreamRequest) -> list[Any]:
    return [event async for event in router.stub.ChatStream(request)]


def streamed_text(stream: list[Any]) -> str:
    chunks = [e.chunk for e in stream if e.WhichOneof("event") == "chunk"]
    chunks += [c for e in stream if e.WhichOneof("event") == "chunks" for c in e.chunks.chunks]
    return "".join(choice.delta.text for chunk in chunks for choice in chunk.choices)


async def test_the_cache_is_off_unless_configured(fake: FakeUpstream, router: RouterHandle) -> None:
    first = await router.stub.Chat(chat())
    second = await router.stub.Chat(chat())
    assert upstream_calls(fake) == 2
    assert first.route.cache == second.route.cache == routing_pb2.CACHE_STATUS_UNSPECIFIED


async def test_the_same_request_is_answered_from_the_cache_until_its_ttl(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(1_000_000.0)
    router = await start_router(cached_config(fake, ttl_s=60), clock=clock)
    first = await router.stub.Chat(chat())
    assert first.route.cache == MISS
    clock.advance(42)
    second = await router.stub.Chat(chat(user="someone-else"))  # `user` is not part of the key
    assert upstream_calls(fake) == 1
    assert second.route.cache == HIT
    assert second.route.cache_age_s == pytest.approx(42)
    assert second.completion == first.completion
    assert second.route.deployment == first.route.deployment == "alpha/model-a"
    assert list(second.route.attempts) == []  # nothing was tried for this one
    assert second.route.requested_model == "chain"
    clock.advance(19)  # 61 s after it was kept
    third = await router.stub.Chat(chat())
    assert third.route.cache == MISS
    assert upstream_calls(fake) == 2


async def test_what_is_asked_is_the_key(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(cached_config(fake))
    await router.stub.Chat(chat())
    others = (chat(text="hello!"), chat(temperature=0.5), chat(max_tokens=7), chat("alpha/model-a"))
    for other in others:
        assert (await router.stub.Chat(other)).route.cache == MISS
    assert upstream_calls(fake) == 5
    assert (await router.stub.Chat(chat(temperature=0.5))).route.cache == HIT


async def test_a_bypass_refreshes_the_answer_and_off_leaves_the_cache_alone(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(cached_config(fake))
    await router.stub.Chat(chat())
    fake.state.set_scenario(Scenario(content="a newer answer"))
    fresh = await router.stub.Chat(with_mode(chat(), routing_pb2.CACHE_MODE_BYPASS))
    assert fresh.route.cache == BYPASS
    assert fresh.completion.choices[0].message.text == "a newer answer"
    fake.state.set_scenario(Scenario(content="not kept"))
    off = await router.stub.Chat(with_mode(chat(), routing_pb2.CACHE_MODE_OFF))
    assert off.route.cache == routing_pb2.CACHE_STATUS_UNSPECIFIED
    assert off.completion.choices[0].message.text == "not kept"
    assert upstream_calls(fake) == 3
    kept = await router.stub.Chat(chat())
    assert kept.route.cache == HIT
    assert kept.completion.choices[0].message.text == "a newer answer"


async def test_a_failed_call_is_not_kept(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(cached_config(fake))
    fake.state.set_scenario(Scenario.server_error(503))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(chat())
    fake.state.clear_scenarios()
    # A deadline shorter than the failure's 15 s cooldown: sent at once, not after it.
    assert (await router.stub.Chat(chat(), timeout=10)).route.cache == MISS


async def test_only_the_models_listed_are_cached(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(cached_config(fake, models=["embedder"]))
    await router.stub.Chat(chat())
    second = await router.stub.Chat(chat())
    assert second.route.cache == routing_pb2.CACHE_STATUS_UNSPECIFIED
    assert upstream_calls(fake) == 2


async def test_an_answer_over_the_entry_bound_is_not_kept(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(cached_config(fake, max_entry_bytes=200))
    fake.state.set_scenario(Scenario(content="x" * 300))
    await router.stub.Chat(chat())
    assert (await router.stub.Chat(chat())).route.cache == MISS
    assert upstream_calls(fake) == 2


async def test_a_client_keeps_answers_up_to_its_quota(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    texts = ("one", "two", "six")  # answers of one size
    measure = await start_router(cached_config(fake))
    await measure.stub.Chat(chat(text="one"))
    size = await entry_bytes(measure, chat(text="one"))
    clock = ManualClock(1_000_000.0)
    quota = 2 * size + size // 2
    router = await start_router(cached_config(fake, client_bytes=quota, ttl_s=60), clock=clock)
    for text in texts:
        await router.stub.Chat(chat(text=text))
    hits = [(await router.stub.Chat(chat(text=t))).route.cache for t in texts]
    assert hits == [HIT, HIT, MISS]  # the third did not fit this period
    clock.advance(60)  # the next period: the quota is back, the old answers gone
    await router.stub.Chat(chat(text="six"))
    assert (await router.stub.Chat(chat(text="six"))).route.cache == HIT


async def test_clients_never_share_answers(fake: FakeUpstream, start_router: StartRouter) -> None:
    config = guarded_config(
        fake.base_url, client("alice", ALICE), client("bob", BOB), cache={"enabled": True}
    )
    router = await start_router(config)
    await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert (await router.stub.Chat(chat(), metadata=bearer(BOB))).route.cache == MISS
    assert (await router.stub.Chat(chat(), metadata=bearer(ALICE))).route.cache == HIT
    assert upstream_calls(fake) == 2


async def test_a_cached_answer_costs_no_tokens_of_a_budget(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(1_000_000.0)
    config = guarded_config(
        fake.base_url,
        client("alice", ALICE, tokens_per_day=40),
        cache={"enabled": True, "ttl_s": 600},
    )
    router = await start_router(config, clock=clock)
    first = await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert 0 < first.completion.usage.total_tokens < 40
    for _ in range(20):  # far more than the budget, were each counted
        answer = await router.stub.Chat(chat(), metadata=bearer(ALICE))
        assert answer.route.cache == HIT
    # The budget holds what the one upstream call used: another call still fits.
    await router.stub.Chat(chat(text="something new"), metadata=bearer(ALICE))


async def test_a_stream_is_replayed_as_it_was_relayed(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(cached_config(fake))
    request = chat_stream(stream_options=chat_pb2.StreamOptions(include_usage=True))
    first = await events(router, request)
    assert first[0].route.cache == MISS and first[-1].summary.route.cache == MISS
    second = await events(router, request)
    assert upstream_calls(fake) == 1
    assert second[0].route.cache == HIT and second[-1].summary.route.cache == HIT
    assert streamed_text(second) == streamed_text(first) == "Echo: hello"
    assert second[-1].summary.usage == first[-1].summary.usage
    assert [e.chunk for e in second[1:-1]] == [
        c for e in first if e.WhichOneof("event") in ("chunk", "chunks") for c in _chunks(e)
    ]
    batched = pb.ChatStreamRequest(params=request.params, batch_chunks=True)
    replayed = await events(router, batched)
    assert [e.WhichOneof("event") for e in replayed] == ["route", "chunks", "summary"]
    assert streamed_text(replayed) == "Echo: hello"


def _chunks(event: Any) -> list[chat_pb2.ChatCompletionChunk]:
    return [event.chunk] if event.WhichOneof("event") == "chunk" else list(event.chunks.chunks)


async def test_unary_answers_and_streams_are_kept_apart(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(cached_config(fake))
    await router.stub.Chat(chat())
    stream = await events(router, chat_stream())
    assert stream[0].route.cache == MISS
    assert upstream_calls(fake) == 2


async def test_a_stream_cut_short_or_left_is_not_kept(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(cached_config(fake))
    fake.state.set_scenario(Scenario(truncate_after_chunks=2), model="model-a")
    fake.state.set_scenario(Scenario(truncate_after_chunks=2), model="model-b")
    cut = await events(router, chat_stream())
    assert any(e.WhichOneof("event") == "error" for e in cut)
    # The upstream then holds the stream open after two chunks: the caller leaves while it is
    # unfinished (with a fast upstream the router could finish it before the cancel arrives).
    for model in ("model-a", "model-b"):
        fake.state.set_scenario(Scenario(stall_after_chunks=2), model=model)
    call = router.stub.ChatStream(chat_stream())
    async for event in call:  # leave after the first chunk
        if event.WhichOneof("event") in ("chunk", "chunks"):
            call.cancel()
            break
    await fake.state.wait_idle()  # the router let go of the upstream call: the stream ended
    await router.runtime.afterwork.drain()
    fake.state.clear_scenarios()
    calls = upstream_calls(fake)
    whole = await events(router, chat_stream())
    assert whole[0].route.cache == MISS  # neither was kept
    assert upstream_calls(fake) == calls + 1


async def test_embeddings_are_cached(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(cached_config(fake))
    request = pb.EmbedRequest(
        params=embeddings_pb2.EmbeddingParams(
            model="embedder", texts=embeddings_pb2.TextList(values=["a", "b"])
        )
    )
    first = await router.stub.Embed(request)
    second = await router.stub.Embed(request)
    assert (first.route.cache, second.route.cache) == (MISS, HIT)
    assert second.result == first.result
    assert upstream_calls(fake) == 1


async def test_a_purge_forgets_the_answers_of_one_model_or_of_all(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(cached_config(fake))
    await router.stub.Chat(chat())
    await router.stub.Chat(chat("alpha/model-a"))
    await router.admin.PurgeCache(admin_pb.PurgeCacheRequest(model="chain"))
    assert (await router.stub.Chat(chat())).route.cache == MISS  # purged
    assert (await router.stub.Chat(chat("alpha/model-a"))).route.cache == HIT  # another model
    assert (await router.stub.Chat(chat())).route.cache == HIT  # kept again after the purge
    await router.admin.PurgeCache(admin_pb.PurgeCacheRequest())
    assert (await router.stub.Chat(chat())).route.cache == MISS
    assert (await router.stub.Chat(chat("alpha/model-a"))).route.cache == MISS
    assert upstream_calls(fake) == 5


async def test_a_purge_needs_the_admin_scope_and_a_known_model(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    admin = client("ops", "sk-ops-cache-0123", scopes=["admin"])
    config = guarded_config(fake.base_url, client("alice", ALICE), admin, cache={"enabled": True})
    router = await start_router(config)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.admin.PurgeCache(admin_pb.PurgeCacheRequest(), metadata=bearer(ALICE))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        # A key pasted where the model goes: never repeated (the error reaches a terminal, logs).
        request = admin_pb.PurgeCacheRequest(model="sk-pasted-by-mistake-0123")
        await router.admin.PurgeCache(request, metadata=bearer("sk-ops-cache-0123"))
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    assert "sk-pasted" not in str(unknown.value.details()) + str(unknown.value.trailing_metadata())
    await router.admin.PurgeCache(
        admin_pb.PurgeCacheRequest(model="chain"), metadata=bearer("sk-ops-cache-0123")
    )


async def test_a_client_configured_without_the_cache_never_gets_nor_leaves_answers(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = guarded_config(
        fake.base_url,
        client("alice", ALICE, cache=False),
        client("bob", BOB),
        cache={"enabled": True},
    )
    router = await start_router(config)
    for _ in range(2):
        answer = await router.stub.Chat(chat(), metadata=bearer(ALICE))
        assert answer.route.cache == routing_pb2.CACHE_STATUS_UNSPECIFIED
    await router.stub.Chat(chat(), metadata=bearer(BOB))
    assert (await router.stub.Chat(chat(), metadata=bearer(BOB))).route.cache == HIT
    assert upstream_calls(fake) == 3


@pytest.mark.parametrize("formats", [("float", "base64"), ("base64", "float"), (None, "base64")])
async def test_embeddings_are_kept_once_whatever_encoding_format_asks(
    fake: FakeUpstream, start_router: StartRouter, formats: tuple[str | None, str]
) -> None:
    """The same vectors asked as floats and as base64 are one answer, kept once and given in
    the encoding each caller asks: the second is a HIT, no second upstream call."""
    router = await start_router(cached_config(fake))

    def request(encoding: str | None) -> pb.EmbedRequest:
        texts = embeddings_pb2.TextList(values=["a", "b"])
        params = embeddings_pb2.EmbeddingParams(model="embedder", texts=texts)
        if encoding is not None:
            params.encoding_format = encoding
        return pb.EmbedRequest(params=params)

    first = await router.stub.Embed(request(formats[0]))
    second = await router.stub.Embed(request(formats[1]))
    assert (first.route.cache, second.route.cache) == (MISS, HIT)
    assert upstream_calls(fake) == 1
    assert [vectors(e) for e in second.result.data] == [vectors(e) for e in first.result.data]
    for asked, answer in zip(formats, (first, second), strict=True):
        packed = [e.HasField("base64") for e in answer.result.data]
        assert packed == [asked == "base64"] * 2, (asked, answer.result)


def vectors(embedding: embeddings_pb2.Embedding) -> list[float]:
    """An embedding's vector, its float32 values (as base64 packs them)."""
    if embedding.HasField("base64"):
        raw = base64.b64decode(embedding.base64)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return [struct.unpack("<f", struct.pack("<f", v))[0] for v in embedding.values]
