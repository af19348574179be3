"""Callers over gRPC (issue #7): keys, scopes, allowed models, bounds and limits, each answered
with its status code and rich details; health and reflection stay open; every attempt audited."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.auth.helpers import (
    bearer,
    chat,
    chat_stream,
    client,
    guarded_config,
)

ALICE = "sk-alice-0123456789"
BOB = "sk-bob-0123456789"


@pytest.fixture
async def guarded(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(
        guarded_config(
            fake.base_url,
            client("alice", ALICE),
            client("bob", BOB, models=["embedder", "alpha/*"], scopes=["embed", "chat"]),
        )
    )


async def test_missing_and_unknown_keys_are_unauthenticated(guarded: RouterHandle) -> None:
    for metadata, code in [((), "missing_api_key"), (bearer("sk-wrong"), "invalid_api_key")]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await guarded.stub.Chat(chat(), metadata=metadata)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        details = details_from_rpc_error(caught.value)
        assert details.reason == "UNAUTHENTICATED"
        assert details.openai_type == "authentication_error"
        assert details.openai_code == code
    # Another scheme is no key at all.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await guarded.stub.Chat(chat(), metadata=(("authorization", f"Basic {ALICE}"),))
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_known_key_is_served(guarded: RouterHandle) -> None:
    response = await guarded.stub.Chat(chat(), metadata=bearer(ALICE))
    assert response.completion.choices[0].message.text == "Echo: hello"
    # The scheme is case-insensitive, as in HTTP.
    await guarded.stub.Chat(chat(), metadata=(("authorization", f"bearer {ALICE}"),))


async def test_health_and_reflection_stay_open(guarded: RouterHandle) -> None:
    health = health_pb2_grpc.HealthStub(guarded.channel)
    call = health.Check(health_pb2.HealthCheckRequest())
    assert (await call).status == health_pb2.HealthCheckResponse.SERVING
    assert ("switchboard-auth", "keys") in tuple(await call.trailing_metadata())
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    reflect = reflection_pb2_grpc.ServerReflectionStub(guarded.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for answer in reflect.ServerReflectionInfo(iter([request])):
        names = {s.name for s in answer.list_services_response.service}
        assert "switchboard.v1.RouterService" in names


async def test_health_says_open_mode(router: RouterHandle) -> None:
    call = health_pb2_grpc.HealthStub(router.channel).Check(health_pb2.HealthCheckRequest())
    await call
    assert ("switchboard-auth", "open") in tuple(await call.trailing_metadata())


async def test_scopes(guarded: RouterHandle) -> None:
    # bob has chat and embed but neither `models` nor `admin`.
    for call in (
        guarded.stub.ListModels(pb.ListModelsRequest(), metadata=bearer(BOB)),
        guarded.admin.ListKeys(admin_pb.ListKeysRequest(), metadata=bearer(BOB)),
        guarded.admin.ListKeys(admin_pb.ListKeysRequest(), metadata=bearer(ALICE)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
        details = details_from_rpc_error(caught.value)
        assert (details.reason, details.openai_code) == ("PERMISSION_DENIED", "missing_scope")
    models = await guarded.stub.ListModels(pb.ListModelsRequest(), metadata=bearer(ALICE))
    assert models.models


async def test_admin_scope(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(
        guarded_config(fake.base_url, client("ops", "sk-ops", scopes=["admin"]))
    )
    keys = await router.admin.ListKeys(admin_pb.ListKeysRequest(), metadata=bearer("sk-ops"))
    assert keys.keys
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(), metadata=bearer("sk-ops"))
    # As an unknown key (no oracle of the admin key: test_admin_key_oracle.py).
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_allowed_models(guarded: RouterHandle) -> None:
    embed = pb.EmbedRequest(params=embeddings_pb2.EmbeddingParams(model="embedder", text="x"))
    assert (await guarded.stub.Embed(embed, metadata=bearer(BOB))).result.data
    # A pattern: any deployment of alpha.
    answer = await guarded.stub.Chat(chat("alpha/model-a"), metadata=bearer(BOB))
    assert answer.route.deployment == "alpha/model-a"
    for request in (chat("chain"), chat("beta/model-b")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await guarded.stub.Chat(request, metadata=bearer(BOB))
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
        details = details_from_rpc_error(caught.value)
        assert (details.openai_code, details.openai_param) == ("model_not_allowed", "model")
    # A stream is checked before it starts.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in guarded.stub.ChatStream(chat_stream("chain"), metadata=bearer(BOB)):
            pass
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_unknown_model_is_not_found_for_every_caller(guarded: RouterHandle) -> None:
    for key in (ALICE, BOB):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await guarded.stub.Chat(chat("no-such-model"), metadata=bearer(key))
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        assert details_from_rpc_error(caught.value).openai_code == "model_not_found"


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", 0), ("max_tokens", -5), ("max_completion_tokens", 1001)],
)
async def test_max_tokens_bounds(
    fake: FakeUpstream, start_router: StartRouter, field: str, value: int
) -> None:
    router = await start_router(
        base_config(fake.base_url, server={"port": 0, "max_tokens_ceiling": 1000})
    )
    bound: dict[str, Any] = {field: value}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(**bound))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = details_from_rpc_error(caught.value)
    assert details.openai_param == field
    assert "between 1 and 1000" in details.message
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in router.stub.ChatStream(chat_stream(**bound)):
            pass
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert fake.state.calls() == []
    ceiling: dict[str, Any] = {field: 1000}
    await router.stub.Chat(chat(**ceiling))


async def test_rpm_limit_with_retry_info(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(
        guarded_config(fake.base_url, client("alice", ALICE, rpm=2), client("bob", BOB))
    )
    for _ in range(2):
        await router.stub.Chat(chat(), metadata=bearer(ALICE))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(caught.value)
    assert (details.reason, details.openai_type) == ("RATE_LIMITED", "rate_limit_error")
    assert details.openai_code == "rate_limit_exceeded"
    assert (
        details.retry_after_s is not None and 0 < details.retry_after_s <= 120
    )  # two windows at most
    assert len(fake.state.calls()) == 2  # the refused call never reached an upstream
    # Limits are per client: bob is untouched.
    await router.stub.Chat(chat(), metadata=bearer(BOB))


async def test_tpm_limit_counts_the_estimate_and_settles_usage(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(guarded_config(fake.base_url, client("alice", ALICE, tpm=300)))
    # The estimate counts max_tokens (200) in full; the real usage is a few tokens, and the
    # window is corrected to it, so the next large request still fits.
    for _ in range(3):
        await router.stub.Chat(chat(max_tokens=200), metadata=bearer(ALICE))
    # One request larger than what is left of the window is refused.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(text="x" * 1200, max_tokens=280), metadata=bearer(ALICE))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "300 tokens per minute" in details_from_rpc_error(caught.value).message


async def test_concurrent_streams_limit_and_release_on_cancel(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(
        guarded_config(fake.base_url, client("alice", ALICE, max_concurrent_streams=1))
    )
    store = router.runtime.store
    # The role chunk, one content chunk, then silence: the stream stays open.
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    first = router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE))
    async for message in first:
        if message.WhichOneof("event") == "chunk":
            break  # the stream is open, and held by the stalled upstream
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE)):
            pass
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "concurrent streams" in details_from_rpc_error(caught.value).message
    # A unary call holds no stream slot.
    fake.state.set_scenario(Scenario())
    await router.stub.Chat(chat(), metadata=bearer(ALICE))
    first.cancel()

    async def released() -> bool:
        return await store.held(["client:alice:streams"]) == [0]

    await eventually(released, what="stream slot released after cancel")
    events = [m async for m in router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE))]
    assert events[-1].WhichOneof("event") == "summary"
    # ... and after a stream that ended normally, the slot is free again.
    assert await store.held(["client:alice:streams"]) == [0]


def audited(record: logging.LogRecord) -> dict[str, Any]:
    """An audit line's fields, as the JSON formatter writes them."""
    return {name: record.__dict__[name] for name in AUDIT_FIELDS if name in record.__dict__}


AUDIT_FIELDS = (
    "outcome",
    "method",
    "peer",
    "client",
    "key_fingerprint",
    "forwarded_for",
    "request_id",
    "reason",
)


async def test_audit_lines_never_hold_the_key(
    guarded: RouterHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    forwarded = (("x-forwarded-for", "10.1.2.3"), ("x-request-id", "req-quote-me"))
    await guarded.stub.Chat(chat(), metadata=(*bearer(ALICE), *forwarded))
    with pytest.raises(grpc.aio.AioRpcError):
        too_long = ("x-request-id", "r" * 1025)  # longer than the edge forwards: not logged
        await guarded.stub.Chat(chat(), metadata=(*bearer("sk-intruder"), too_long))
    with pytest.raises(grpc.aio.AioRpcError):
        await guarded.stub.Chat(chat())
    records = [r for r in caplog.records if r.name == "switchboard.audit"]
    events = [audited(r) for r in records]
    ok, wrong, missing = events
    assert ok["outcome"] == "success" and ok["client"] == "alice"
    assert ok["method"] == "/switchboard.v1.RouterService/Chat"
    assert ok["peer"].startswith("ipv") and ok["forwarded_for"] == "10.1.2.3"
    assert ok["request_id"] == "req-quote-me"  # the caller's own id, which it quotes
    assert "request_id" not in wrong and "request_id" not in missing
    assert wrong["outcome"] == "failure" and wrong["reason"] == "invalid_api_key"
    assert wrong["key_fingerprint"] == fingerprint("sk-intruder")
    assert missing["reason"] == "missing_api_key" and "key_fingerprint" not in missing
    assert records[1].levelno == logging.WARNING
    assert records[0].getMessage() == "auth success"  # short: the fields are the record's
    for text in (f"{r.getMessage()} {audited(r)}" for r in records):
        assert ALICE not in text and "sk-intruder" not in text


async def test_audit_refusals_only_logs_no_line_for_an_admitted_call(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    config = guarded_config(fake.base_url, client("alice", ALICE))
    config["auth"]["audit"] = "refusals"
    router = await start_router(config)
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    await router.stub.Chat(chat(), metadata=bearer(ALICE))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(chat(), metadata=bearer("sk-intruder"))
    events = [audited(r) for r in caplog.records if r.name == "switchboard.audit"]
    assert [event["outcome"] for event in events] == ["failure"]


async def test_a_limited_caller_does_not_slow_another(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(
        guarded_config(fake.base_url, client("alice", ALICE, rpm=1), client("bob", BOB))
    )
    await router.stub.Chat(chat(), metadata=bearer(ALICE))

    async def alice_hammers() -> int:
        refused = 0
        for _ in range(100):
            call = router.stub.Chat(chat(), metadata=bearer(ALICE))
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call
            refused += await call.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        return refused

    async def bob_times() -> list[float]:
        loop = asyncio.get_running_loop()
        times = []
        for _ in range(10):
            start = loop.time()
            await router.stub.Chat(chat(), metadata=bearer(BOB))
            times.append(loop.time() - start)
        return times

    hammers = [asyncio.create_task(alice_hammers()) for _ in range(4)]
    times = await bob_times()
    assert sum(await asyncio.gather(*hammers)) == 400
    # Refusals are immediate (no queue), so bob's calls stay fast whatever alice does.
    assert max(times) < 1.0
    assert len(fake.state.calls(model="model-a")) == 11


async def test_n_bound_from_config(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(base_config(fake.base_url, server={"port": 0, "max_n": 3}))
    for n in (0, 4):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.stub.Chat(chat(n=n))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        details = details_from_rpc_error(caught.value)
        assert (details.openai_param, details.openai_code) == ("n", "invalid_value")
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            async for _ in router.stub.ChatStream(chat_stream(n=n)):
                pass
        assert streamed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert fake.state.calls() == []
    answer = await router.stub.Chat(chat(n=3))
    assert len(answer.completion.choices) == 3
