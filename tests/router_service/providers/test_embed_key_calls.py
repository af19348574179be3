"""Embeddings sent as several upstream calls (`_batched`) are several of the key's calls: each
counts in its rpm window, and they run at once only in in-flight slots of its own (the key's
limits were passed N-fold, and the upstream answered 429). A failover to the same model after
some batches were answered sends only the rest: those already answered (and billed) are not
sent again. Over a real router and the fake upstream, its calls counted."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._responses import embedding_vector
from tests.conftest import RouterHandle, StartRouter

TEXTS = [f"text number {i}" for i in range(230)]  # three calls: 100, 100 and 30 (Gemini)
BATCHES = "/v1beta/models/gemini-embedding-001:batchEmbedContents"


def config(
    fake: FakeUpstream,
    keys: list[dict[str, Any]],
    models: tuple[str, ...] = ("gemini-embedding-001",),
) -> dict[str, Any]:
    gemini = {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": keys}
    deployments = [{"provider": "gem", "model": model} for model in models]
    return {
        "providers": {"gem": {**gemini, "queue_timeout_s": 0}},
        "models": {"emb": {"strategy": "ordered", "deployments": deployments}},
        "server": {"port": 0},
    }


def request(texts: list[str]) -> pb.EmbedRequest:
    params = embeddings_pb2.EmbeddingParams(
        model="emb", texts=embeddings_pb2.TextList(values=texts), dimensions=4
    )
    return pb.EmbedRequest(params=params)


def vectors(response: pb.EmbedResponse) -> list[list[float]]:
    return [list(item.values) for item in response.result.data]


def expected(texts: list[str]) -> list[Any]:
    return [pytest.approx(embedding_vector(text, 4), abs=1e-6) for text in texts]


async def second_call_answered(
    router: RouterHandle, fake: FakeUpstream, scenario: Scenario, key: str | None = None
) -> asyncio.Future[Any]:
    """The embedding of TEXTS (three calls, one at a time), its second call answered as
    `scenario` says (on `key` only, when given)."""
    fake.state.hold()
    embedding: asyncio.Future[Any] = asyncio.ensure_future(router.stub.Embed(request(TEXTS)))
    await fake.state.wait_for(lambda: fake.state.held == 1)
    fake.state.set_scenario(scenario, **({} if key is None else {"key": key}))
    fake.state.release()
    return embedding


async def test_every_call_counts_in_the_keys_rpm(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(config(fake, [{"key": "g-key", "rpm": 3}]), clock=ManualClock())

    await router.stub.Embed(request(TEXTS))
    assert fake.state.count(path=BATCHES) == 3

    # Its three calls fill the key's minute: the next request is refused, not sent to a 429.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Embed(request(["one more"]))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(caught.value).reason == "NO_CAPACITY"
    assert fake.state.count() == 3


async def test_calls_run_at_once_only_in_slots_of_the_key(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(config(fake, [{"key": "g-key", "max_in_flight": 2}]))
    fake.state.hold()
    embedding = asyncio.ensure_future(router.stub.Embed(request(TEXTS)))
    await fake.state.wait_for(lambda: fake.state.held == 2)

    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest())
    assert [key.in_flight for key in listed.keys] == [2]  # two calls upstream: two slots held
    fake.state.release()

    assert vectors(await embedding) == expected(TEXTS)
    assert fake.state.count(path=BATCHES) == 3  # the third after one of the first two
    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest())
    assert [key.in_flight for key in listed.keys] == [0]  # each slot given back


async def test_failover_sends_only_the_batches_not_answered(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # One call at a time on each key: the first batch is answered before the second goes.
    keys = [{"key": "g-a", "max_in_flight": 1}, {"key": "g-b", "max_in_flight": 1}]
    router = await start_router(config(fake, keys))
    embedding = await second_call_answered(router, fake, Scenario.rate_limited(times=1), "g-a")

    assert vectors(await embedding) == expected(TEXTS)  # in order, whichever key answered
    sent = fake.state.calls(path=BATCHES)
    by_key = {
        key: [(len(r.body["requests"]), r.status) for r in sent if r.key == key]
        for key in ("g-a", "g-b")
    }
    assert by_key == {"g-a": [(100, 200), (100, 429)], "g-b": [(100, 200), (30, 200)]}


async def test_failover_to_another_model_sends_every_batch(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Its vectors are another model's: none of the first one's answers is mixed in.
    models = ("gemini-embedding-001", "text-embedding-004")
    router = await start_router(config(fake, [{"key": "g-key", "max_in_flight": 1}], models))
    fake.state.hold()
    embedding = asyncio.ensure_future(router.stub.Embed(request(TEXTS)))
    await fake.state.wait_for(lambda: fake.state.held == 1)
    fake.state.set_scenario(Scenario.server_error(times=1), model="gemini-embedding-001")
    fake.state.release()

    response = await embedding
    assert response.route.deployment.endswith("text-embedding-004")
    assert vectors(response) == expected(TEXTS)
    first = [(len(r.body["requests"]), r.status) for r in fake.state.calls(path=BATCHES)]
    assert first == [(100, 200), (100, 500)]
    other = fake.state.calls(path=BATCHES.replace("gemini-embedding-001", "text-embedding-004"))
    assert sorted(len(r.body["requests"]) for r in other) == [30, 100, 100]


# Three calls counted as they went to start; the second fails, the third is never made. rpm:
# the key's minute holds the two sent, and has room for one more request. tpm: the request's
# estimate is 920 tokens (230 texts), and the Gemini API reports no usage; the key counts the
# share of the two it sent (2/3 of 920: 614), so a request of 400 more (100 texts) fits, not
# two (it counted the whole 920 before, and refused the first).
@pytest.mark.parametrize(
    ("limit", "more"),
    [({"rpm": 3}, [["one more"], ["and another"]]), ({"tpm": 1100}, [TEXTS[:100]] * 2)],
    ids=["rpm", "tpm"],
)
async def test_calls_never_made_after_a_failure_leave_the_keys_minute(
    fake: FakeUpstream, start_router: StartRouter, limit: dict[str, int], more: list[list[str]]
) -> None:
    key = {"key": "g-key", "max_in_flight": 1, **limit}
    router = await start_router(config(fake, [key]), clock=ManualClock())
    embedding = await second_call_answered(router, fake, Scenario.server_error(times=1))
    with pytest.raises(grpc.aio.AioRpcError):
        await embedding
    assert [r.status for r in fake.state.calls(path=BATCHES)] == [200, 500]

    response = await router.stub.Embed(request(more[0]))  # not refused
    assert vectors(response) == expected(more[0])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Embed(request(more[1]))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_resumed_failover_charges_the_new_key_only_the_share_it_sends(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # The request's estimate is 920 tokens (230 texts), each key's tpm 1,100, and the Gemini API
    # reports no usage (the estimate stays). g-a answers the first batch, then 429; g-b sends
    # the other two of three: it counts 2/3 of 920 (614), not 920, so a request of 400 more
    # (100 texts) still fits there (g-a, cooling for its 429's second, is not tried).
    keys = [{"key": k, "max_in_flight": 1, "tpm": 1100} for k in ("g-a", "g-b")]
    router = await start_router(config(fake, keys), clock=ManualClock())
    embedding = await second_call_answered(router, fake, Scenario.rate_limited(times=1), "g-a")
    assert vectors(await embedding) == expected(TEXTS)
    sent = fake.state.calls(path=BATCHES)
    assert [(r.key, len(r.body["requests"])) for r in sent if r.key == "g-b"] == [
        ("g-b", 100),
        ("g-b", 30),
    ]

    response = await router.stub.Embed(request(TEXTS[:100]))  # 400 tokens: only g-b has room
    assert vectors(response) == expected(TEXTS[:100])
    assert fake.state.calls(path=BATCHES)[-1].key == "g-b"


async def test_a_failover_leaves_the_failed_key_only_the_share_it_sent(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # g-a sends two of the three calls (its second answered 429), g-b the other two: each
    # counts the share of the 920 estimated that it sent (614), where g-a kept the whole 920
    # before. Once g-a's second of cooling is over (the minute still counting), two requests
    # of 400 more fit, one on either key; a third on neither.
    keys = [{"key": k, "max_in_flight": 1, "tpm": 1100} for k in ("g-a", "g-b")]
    clock = ManualClock()
    router = await start_router(config(fake, keys), clock=clock)
    # Its second call on g-a: 429, Retry-After: 1.
    embedding = await second_call_answered(router, fake, Scenario.rate_limited(times=1), "g-a")
    assert vectors(await embedding) == expected(TEXTS)
    sent = [(r.key, len(r.body["requests"]), r.status) for r in fake.state.calls(path=BATCHES)]
    assert sent == [("g-a", 100, 200), ("g-a", 100, 429), ("g-b", 100, 200), ("g-b", 30, 200)]

    clock.advance(2)
    for _ in range(2):
        response = await router.stub.Embed(request(TEXTS[:100]))
        assert vectors(response) == expected(TEXTS[:100])
    assert sorted(r.key for r in fake.state.calls(path=BATCHES)[-2:]) == ["g-a", "g-b"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Embed(request(TEXTS[:100]))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_shortened_retrys_calls_are_the_keys_too(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # `truncation: auto`: the first batch's long text is refused as too long (the whole input,
    # then cut to half), then cut to a quarter it fits. Each try's calls are the key's as the
    # first try's are: one at a time (max_in_flight 1), each in its rpm window, so the five
    # calls made fill a minute of five and the next request is refused, not sent to a 429.
    long = " ".join(f"word{i}" for i in range(40))
    router = await start_router(
        config(fake, [{"key": "g-key", "rpm": 5, "max_in_flight": 1}]), clock=ManualClock()
    )
    fake.state.set_scenario(Scenario(context_window=12))
    texts = [long, *TEXTS[1:]]
    asked = request(texts)
    asked.routing.truncation = routing_pb2.TRUNCATION_AUTO
    response = await router.stub.Embed(asked)
    assert len(response.result.data) == len(texts)
    sent = [(len(r.body["requests"]), r.status) for r in fake.state.calls(path=BATCHES)]
    assert sent == [(100, 400), (100, 400), (100, 200), (100, 200), (30, 200)]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Embed(request(["one more"]))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.state.count() == 5
