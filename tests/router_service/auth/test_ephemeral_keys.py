"""Ephemeral Realtime client secrets against the rest of the issued keys: the secrets any client
may ask for (each with a session config of up to 64 KiB) never leave the operator unable to
revoke a key or issue one, and a secret opens sessions of its model only while its client may
still use that model (a reload that narrows the client narrows its secrets too), and no longer
than the key that asked for it: its expiry caps the secret's, its revocation (or, for a
configured key, its removal from the file) ends it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import Authenticator, IssuedKeys, RealtimeGrant
from router_service.clock import ManualClock
from router_service.config import AuthConfig, SwitchboardConfig
from router_service.errors import ClientKeyLimitError
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore, RedisStateStore, StateStore
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config

pytestmark = pytest.mark.timeout(60)

OPS = "sk-ops-ephemeral-0123"
APP = "sk-app-ephemeral-0123"
OTHER = "sk-app-ephemeral-4567"
START = 1_700_000_000.0
HOUR = 3600.0
INSTRUCTIONS = "Be brief. " * 6000  # some 60 KiB: a large session config, as OpenAI allows


WEBS = [f"sk-web{i}-ephemeral-0123" for i in range(5)]  # five more clients' keys


def config(fake: FakeUpstream, app_models: list[str] | None = None) -> dict[str, Any]:
    app = client("app", APP, models=app_models) if app_models else client("app", APP)
    webs = [client(f"web{i}", key) for i, key in enumerate(WEBS)]
    sections = guarded_config(fake.base_url, client("ops", OPS, scopes=["admin"]), app, *webs)
    sections["auth"]["max_ephemeral_keys"] = 200
    for name, provider in (("voice", "alpha"), ("voice-b", "beta")):
        sections["models"][name] = {
            "deployments": [{"provider": provider, "model": f"gpt-{name}", "realtime": True}]
        }
    return sections


async def ask_secret(router: RouterHandle, instructions: str = "Be brief.", key: str = APP) -> Any:
    session = {"type": "realtime", "model": "voice", "instructions": instructions}
    request = pb.CreateRealtimeClientSecretRequest(session_json=orjson.dumps(session).decode())
    return await router.stub.CreateRealtimeClientSecret(request, metadata=bearer(key))


async def test_secrets_filling_the_log_leave_revocation_and_issues_to_the_operator(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(SwitchboardConfig.model_validate(config(fake)))
    laptop = await router.admin.IssueClientKey(
        admin_pb.IssueClientKeyRequest(client="app", label="laptop"), metadata=bearer(OPS)
    )
    made, codes = 0, []
    for key in WEBS:  # five clients' browsers, each asking until refused
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            for _ in range(100):  # 100 of 60 KiB: past the log's 4 MiB
                await ask_secret(router, INSTRUCTIONS, key=key)
                made += 1
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        codes.append(details_from_rpc_error(refused.value).openai_code)
    assert codes[0] == "client_key_limit" and codes[-1] == "client_key_log_full"
    assert 20 < made < 40  # they take half the log at most

    # The leaked laptop key is revoked, and refused from then on; the operator issues another.
    await router.admin.RevokeClientKey(
        admin_pb.RevokeClientKeyRequest(id=laptop.info.id), metadata=bearer(OPS)
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(chat(), metadata=bearer(laptop.key))
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    desk = await router.admin.IssueClientKey(
        admin_pb.IssueClientKeyRequest(client="app", label="desk"), metadata=bearer(OPS)
    )
    assert await router.stub.Chat(chat(), metadata=bearer(desk.key))


async def test_one_client_takes_a_quarter_of_the_secrets_share_at_most(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(SwitchboardConfig.model_validate(config(fake)))
    made = 0
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        for _ in range(100):
            await ask_secret(router, INSTRUCTIONS)
            made += 1
    details = details_from_rpc_error(refused.value)
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.openai_code == "client_key_limit"
    assert "Client 'app'" in details.message and "512 KiB" in details.message
    assert 6 <= made <= 9  # 512 KiB of some 60 KiB each: not 200 (max_ephemeral_keys)
    # Another client's browsers still get theirs; small session configs fit in what is left.
    assert (await ask_secret(router, INSTRUCTIONS, key=WEBS[0])).value.startswith("ek_")
    assert (await ask_secret(router, "Be brief.")).value.startswith("ek_")


async def test_a_secret_made_and_ended_is_audited_even_with_audit_refusals(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    sections = config(fake)
    sections["auth"]["audit"] = "refusals"  # no line per admitted call
    router = await start_router(SwitchboardConfig.model_validate(sections))
    backend = await router.admin.IssueClientKey(
        admin_pb.IssueClientKeyRequest(client="app", label="backend"), metadata=bearer(OPS)
    )
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    asked = pb.CreateRealtimeClientSecretRequest(session_json='{"model": "voice"}')
    made = await router.stub.CreateRealtimeClientSecret(asked, metadata=bearer(backend.key))
    (line,) = [r.__dict__ for r in caplog.records if r.name == "switchboard.audit"]
    assert (line["event"], line["client"], line["key_fingerprint"]) == (
        "client_secret",
        "app",
        made.fingerprint,
    )
    assert line["method"].endswith("/CreateRealtimeClientSecret")
    assert f"issued ephemeral client secret {made.key_id}" in line["reason"]

    caplog.clear()
    await router.admin.RevokeClientKey(
        admin_pb.RevokeClientKeyRequest(id=backend.info.id), metadata=bearer(OPS)
    )
    reasons = [r.__dict__["reason"] for r in caplog.records if r.name == "switchboard.audit"]
    assert reasons == [
        f"revoked key {backend.info.id} of client 'app'",
        f"revoked (with key {backend.info.id}, which asked for it) ephemeral client secret "
        f"{made.key_id} of client 'app'",
    ]
    assert made.value not in caplog.text and backend.key not in caplog.text


async def realtime_open(model: str) -> AsyncIterator[pb.RealtimeRequest]:
    yield pb.RealtimeRequest(open=pb.RealtimeOpen(model=model))


async def test_a_reload_narrowing_the_clients_models_narrows_its_secrets(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(SwitchboardConfig.model_validate(config(fake)))
    secret = (await ask_secret(router)).value
    narrowed = config(fake, app_models=["voice-b", "chain"])  # `voice` no longer
    await router.server.reload(SwitchboardConfig.model_validate(narrowed))

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in router.stub.Realtime(realtime_open("voice"), metadata=bearer(secret)):
            pass
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert details_from_rpc_error(refused.value).openai_code == "model_not_allowed"
    assert not fake.state.calls(path="/v1/realtime")


async def test_a_secret_outlives_neither_the_expiry_nor_the_revocation_of_the_key_that_asked(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(START)
    router = await start_router(SwitchboardConfig.model_validate(config(fake)), clock=clock)
    backend = await router.admin.IssueClientKey(
        admin_pb.IssueClientKeyRequest(client="app", label="backend", ttl_s=HOUR),
        metadata=bearer(OPS),
    )
    asked = pb.CreateRealtimeClientSecretRequest(
        session_json=orjson.dumps({"model": "voice"}).decode(), expires_after_s=7200
    )
    made = await router.stub.CreateRealtimeClientSecret(asked, metadata=bearer(backend.key))
    assert made.expires_at_unix == START + HOUR  # not START + 7200: the backend key's expiry
    kept = await ask_secret(router)  # asked with the configured key: not ended below
    assert await refusal(router, made.value) == "ephemeral_key_realtime_only"  # known

    await router.admin.RevokeClientKey(
        admin_pb.RevokeClientKeyRequest(id=backend.info.id), metadata=bearer(OPS)
    )
    assert await refusal(router, made.value) == "invalid_api_key"
    assert await refusal(router, kept.value) == "ephemeral_key_realtime_only"
    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    assert [key.id for key in listed.keys] == [kept.key_id]


async def refusal(router: RouterHandle, key: str) -> str:
    """Why a chat call with `key` is refused (an ephemeral secret's is, whatever it is)."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(chat(), metadata=bearer(key))
    return details_from_rpc_error(refused.value).openai_code or ""


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_compacted_log_keeps_which_key_asked_for_each_secret(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Replica A issues a key and a secret it asked for, and compacts the log; replica B reads
    the new log: the secret is live there, and A revoking the key ends it on B too."""
    clock = ManualClock(START)
    if backend == "memory":
        store_a: StateStore = MemoryStateStore(clock)
        store_b = store_a
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        store_a = RedisStateStore.from_url(url, prefix=prefix, clock=clock)
        store_b = RedisStateStore.from_url(url, prefix=prefix, clock=clock)
    a, b = IssuedKeys(store_a, clock), IssuedKeys(store_b, clock)
    try:
        _, parent = await a.issue("app", "backend", None)
        grant = RealtimeGrant("voice", '{"type":"realtime"}')
        secret, _ = await a.issue("app", "", 60.0, realtime=grant, parent=parent.id)
        gone = [(await a.issue("app", "gone", None))[1] for _ in range(3)]
        for key in gone:
            await a.revoke(key.id)
        assert await a.compact() is True
        await b.refresh()
        assert known(b, secret)

        await a.revoke(parent.id)
        await b.refresh()
        assert not known(a, secret) and not known(b, secret)
    finally:
        for store in {store_a, store_b}:
            await store.aclose()


def known(keys: IssuedKeys, secret: str) -> bool:
    return keys.find(hashlib.sha256(secret.encode()).digest()) is not None


async def test_callers_of_secrets_gone_are_not_kept() -> None:
    """A browser's secret each few minutes, each used: the callers made for them (each holding
    its session config) stay bounded by those live, not by all there ever were."""
    clock = ManualClock(START)
    store = MemoryStateStore(clock)
    auth = AuthConfig.model_validate({"clients": [client("app", APP)], "max_ephemeral_keys": 5})
    keys = IssuedKeys(store, clock).configured(auth)
    authenticator = Authenticator(auth, clock=clock, issued=keys)
    grant = RealtimeGrant("voice", orjson.dumps({"instructions": INSTRUCTIONS}).decode())
    for _ in range(3000):
        secret, _ = await keys.issue("app", "", 10.0, realtime=grant)
        assert authenticator.identify(secret).realtime_grant is not None
        clock.advance(20.0)  # it expired
    assert authenticator.cached_callers <= 1024


async def test_a_configured_key_rotated_out_takes_its_secrets_along(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    def rotating(*keys: str) -> SwitchboardConfig:
        sections = config(fake)
        sections["auth"]["clients"][1] = {"name": "app", "key": [{"key": k} for k in keys]}
        return SwitchboardConfig.model_validate(sections)

    router = await start_router(rotating(APP, OTHER))
    leaked, kept = [await ask_secret(router, key=key) for key in (APP, OTHER)]
    assert await refusal(router, leaked.value) == "ephemeral_key_realtime_only"  # known

    await router.server.reload(rotating(OTHER))  # the leaked key is rotated out
    assert await refusal(router, leaked.value) == "invalid_api_key"
    assert await refusal(router, kept.value) == "ephemeral_key_realtime_only"


async def test_secrets_refused_at_a_full_log_of_live_keys_rewrite_nothing() -> None:
    """At the secrets' share of the log, all of it live: one more is refused without a
    compaction (a rewrite that frees nothing makes every replica read the whole log again)."""
    clock = ManualClock(START)
    keys = IssuedKeys(MemoryStateStore(clock), clock)
    grant = RealtimeGrant("voice", orjson.dumps({"instructions": INSTRUCTIONS}).decode())
    for client_name in [f"app{i}" for i in range(5)]:  # one alone stops at its share
        with pytest.raises(ClientKeyLimitError) as refused:
            for _ in range(100):
                await keys.issue(client_name, "", 600.0, realtime=grant)
    assert refused.value.code == "client_key_log_full"
    before = keys.compactions
    with pytest.raises(ClientKeyLimitError):
        await keys.issue("app5", "", 600.0, realtime=grant)
    assert keys.compactions == before
