"""The request id on the router's audit lines of hand-made changes and lockouts: an operator
greps the caller's `x-request-id` (which the edge forwards, and echoes to the caller) across the
edge's and the router's logs. AdminService's changes (a key issued or revoked, an upstream key
enabled or disabled, the response cache purged), a client's ephemeral secret and the key
throttle's lockout carry the id of the call that made them, on a real router over a real
loopback channel."""

from __future__ import annotations

import logging

import grpc
import orjson
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import bearer, client, guarded_config

pytestmark = pytest.mark.timeout(60)

OPS, APP = "sk-ops-admin-rid-0123", "sk-app-rid-0123"


def said(request_id: str, key: str = OPS) -> tuple[tuple[str, str], ...]:
    return (*bearer(key), ("x-request-id", request_id))


def request_ids(caplog: pytest.LogCaptureFixture, text: str) -> list[object]:
    """The `request_id` field of each line whose message (or an audit line's `reason`) holds
    `text`."""
    return [
        r.__dict__.get("request_id")
        for r in caplog.records
        if text in r.getMessage() or text in str(r.__dict__.get("reason"))
    ]


async def test_admin_changes_carry_the_request_id_of_their_call(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    config = guarded_config(fake.base_url, client("ops", OPS, scopes=["admin"]), client("app", APP))
    config["models"]["voice"] = {
        "deployments": [{"provider": "alpha", "model": "gpt-voice", "realtime": True}]
    }
    router = await start_router(config)
    caplog.set_level(logging.INFO)
    issued = await router.admin.IssueClientKey(
        admin_pb.IssueClientKeyRequest(client="app", label="laptop"), metadata=said("req-issue")
    )
    await router.admin.RevokeClientKey(
        admin_pb.RevokeClientKeyRequest(id=issued.info.id), metadata=said("req-revoke")
    )
    for enabled, request_id in ((False, "req-off"), (True, "req-on")):
        await router.admin.SetKeyEnabled(
            admin_pb.SetKeyEnabledRequest(
                provider="alpha", fingerprint=fingerprint("sk-alpha-1"), enabled=enabled
            ),
            metadata=said(request_id),
        )
    session = {"type": "realtime", "model": "voice"}
    await router.stub.CreateRealtimeClientSecret(
        pb.CreateRealtimeClientSecretRequest(session_json=orjson.dumps(session).decode()),
        metadata=said("req-secret", APP),
    )
    await router.admin.SetKeyEnabled(  # no id sent: none on its line
        admin_pb.SetKeyEnabledRequest(
            provider="alpha", fingerprint=fingerprint("sk-alpha-1"), enabled=True
        ),
        metadata=bearer(OPS),
    )

    assert request_ids(caplog, "issued key") == ["req-issue"]
    assert request_ids(caplog, "revoked key") == ["req-revoke"]
    assert request_ids(caplog, "issued ephemeral client secret") == ["req-secret"]
    assert request_ids(caplog, "key " + fingerprint("sk-alpha-1")) == ["req-off", "req-on", None]


async def test_a_cache_purge_is_audited_with_who_what_and_the_request_id(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    config = guarded_config(fake.base_url, client("ops", OPS, scopes=["admin"]))
    router = await start_router(config)
    caplog.set_level(logging.INFO)
    purge = router.admin.PurgeCache
    await purge(admin_pb.PurgeCacheRequest(model="chain"), metadata=said("req-purge-one"))
    await purge(admin_pb.PurgeCacheRequest(), metadata=said("req-purge-all"))
    with pytest.raises(grpc.aio.AioRpcError):  # nothing purged: no line
        await purge(admin_pb.PurgeCacheRequest(model="sk-pasted"), metadata=said("req-none"))

    assert request_ids(caplog, "purged the response cache") == ["req-purge-one", "req-purge-all"]
    lines = [r for r in caplog.records if r.__dict__.get("event") == "admin"]
    assert [(r.__dict__["client"], r.__dict__["method"]) for r in lines] == [
        ("ops", "/switchboard.v1.AdminService/PurgeCache")
    ] * 2
    assert [r.__dict__["reason"] for r in lines] == [
        "purged the response cache of model 'chain'",
        "purged the response cache of every model",
    ]
    assert "sk-pasted" not in caplog.text


async def test_a_key_enabled_or_disabled_is_audited_with_who_what_and_the_request_id(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    config = guarded_config(fake.base_url, client("ops", OPS, scopes=["admin"]))
    router = await start_router(config)
    caplog.set_level(logging.INFO)
    key = fingerprint("sk-alpha-1")
    for enabled, reason, request_id in ((False, "leaked\nin 4711", "req-off"), (True, "", "")):
        await router.admin.SetKeyEnabled(
            admin_pb.SetKeyEnabledRequest(fingerprint=key, enabled=enabled, reason=reason),
            metadata=said(request_id) if request_id else bearer(OPS),
        )
    with pytest.raises(grpc.aio.AioRpcError):  # no such key: nothing changed, no line
        await router.admin.SetKeyEnabled(
            admin_pb.SetKeyEnabledRequest(fingerprint="sk-alpha-1", enabled=False),
            metadata=said("req-none"),
        )

    lines = [r for r in caplog.records if r.__dict__.get("event") == "admin"]
    assert {(r.name, r.__dict__["client"], r.__dict__["method"]) for r in lines} == {
        ("switchboard.audit", "ops", "/switchboard.v1.AdminService/SetKeyEnabled")
    }
    assert [(r.__dict__["key_fingerprint"], r.__dict__.get("request_id")) for r in lines] == [
        (key, "req-off"),
        (key, None),
    ]
    assert [r.__dict__["reason"] for r in lines] == [
        f"disabled key {key} of provider alpha: 'leaked\\nin 4711'",
        f"enabled key {key} of provider alpha (no reason given)",
    ]
    assert "sk-alpha-1" not in caplog.text


async def test_a_key_throttle_lockout_carries_the_request_id_of_the_call_that_locked_out(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    config = guarded_config(fake.base_url, client("app", APP))
    config["auth"]["key_throttle"] = {"per_address": 2, "window_s": 60}
    router = await start_router(config, clock=ManualClock())
    caplog.set_level(logging.INFO)
    for request_id in ("req-guess-1", "req-guess-2"):
        with pytest.raises(grpc.aio.AioRpcError):
            await router.stub.ListModels(
                pb.ListModelsRequest(), metadata=said(request_id, "sk-guess-Zz9-wrong")
            )
    assert request_ids(caplog, "key authentication throttled") == ["req-guess-2"]
