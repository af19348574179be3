"""Client keys that rotate: several keys per configured client, each with an optional expiry
(refused once past it, warned about at load), and keys issued at run time over AdminService
(they act as their client: its limits count them; audited by fingerprint and label; listed,
never shown; bounded per client; refused once revoked or once their client is removed)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import openai
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.auth import ISSUED_PREFIX
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config

pytestmark = pytest.mark.timeout(60)

OPS = "sk-ops-client-keys-0123"
OLD = "sk-app-old-0123456789"
NEW = "sk-app-new-0123456789"
START = 1_700_000_000.0
HOUR = 3600.0


def rfc3339(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def ops() -> dict[str, Any]:
    return client("ops", OPS, scopes=["admin"])


async def sdk_says(edge: Edge, key: str) -> str:
    """One chat completion through the edge with `key`: its text."""
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=key, max_retries=0, timeout=10
    ) as sdk:
        answer = await sdk.chat.completions.create(
            model="chain", messages=[{"role": "user", "content": "hello"}]
        )
    return answer.choices[0].message.content or ""


async def issue(router: RouterHandle, app: str, label: str = "", **fields: Any) -> Any:
    request = admin_pb.IssueClientKeyRequest(client=app, label=label, **fields)
    return await router.admin.IssueClientKey(request, metadata=bearer(OPS))


async def test_two_keys_both_work_until_one_expires(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(START)
    keys = [{"key": NEW}, {"key": OLD, "expires": rfc3339(START + 2 * HOUR)}]
    config = guarded_config(fake.base_url, {"name": "app", "key": keys})
    caplog.set_level(logging.WARNING, logger="switchboard.auth")
    router = await start_router(SwitchboardConfig.model_validate(config), clock=clock)
    edge = await start_edge(router)

    assert await sdk_says(edge, OLD) and await sdk_says(edge, NEW)
    clock.advance(2 * HOUR)  # the old key's instant: from now on it is unknown
    with pytest.raises(openai.AuthenticationError):
        await sdk_says(edge, OLD)
    assert await sdk_says(edge, NEW)
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "switchboard.auth"]
    assert warning.startswith(f"client app: key {fingerprint(OLD)} expires in 2 h")
    assert OLD not in warning and hashlib.sha256(OLD.encode()).hexdigest() not in warning


async def test_an_issued_key_acts_as_its_client(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = guarded_config(fake.base_url, ops(), client("app", OLD, rpm=2))
    router = await start_router(config, clock=ManualClock(START))
    edge = await start_edge(router)
    issued = await issue(router, "app", "ci-deploy", ttl_s=HOUR)
    assert issued.key.startswith(ISSUED_PREFIX) and len(issued.key) > 40
    assert (issued.info.client, issued.info.label) == ("app", "ci-deploy")
    assert issued.info.fingerprint == fingerprint(issued.key)
    assert issued.info.expires_unix == START + HOUR

    caplog.set_level(logging.INFO, logger="switchboard.audit")
    assert await sdk_says(edge, issued.key)
    assert await sdk_says(edge, OLD)
    with pytest.raises(openai.RateLimitError):  # the client's rpm counts both keys' calls
        await sdk_says(edge, issued.key)
    admitted = next(r.__dict__ for r in caplog.records if r.name == "switchboard.audit")
    assert (admitted["client"], admitted["key_label"]) == ("app", "ci-deploy")
    assert admitted["key_fingerprint"] == fingerprint(issued.key)

    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    clients = await router.admin.ListClients(admin_pb.ListClientsRequest(), metadata=bearer(OPS))
    (app,) = [c for c in clients.clients if c.name == "app"]
    assert [(k.id, k.fingerprint) for k in listed.keys] == [
        (issued.info.id, issued.info.fingerprint)
    ]
    assert [(k.fingerprint, k.label) for k in app.keys] == [
        (fingerprint(OLD), ""),
        (fingerprint(issued.key), "ci-deploy"),
    ]
    digest = hashlib.sha256(issued.key.encode()).hexdigest()
    for shown in (str(listed), str(clients), caplog.text):
        assert issued.key not in shown and digest not in shown


async def test_revoked_and_expired_issued_keys_are_refused(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(START)
    router = await start_router(
        guarded_config(fake.base_url, ops(), client("app", OLD)), clock=clock
    )
    revoked, expiring = await issue(router, "app", "a"), await issue(router, "app", "b", ttl_s=60)
    for issued in (revoked, expiring):
        assert await router.stub.Chat(chat(), metadata=bearer(issued.key))
    answer = await router.admin.RevokeClientKey(
        admin_pb.RevokeClientKeyRequest(id=revoked.info.id), metadata=bearer(OPS)
    )
    assert answer.key.fingerprint == revoked.info.fingerprint
    clock.advance(60)
    for issued in (revoked, expiring):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.stub.Chat(chat(), metadata=bearer(issued.key))
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    assert list(listed.keys) == []
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # once only
        await router.admin.RevokeClientKey(
            admin_pb.RevokeClientKeyRequest(id=revoked.info.id), metadata=bearer(OPS)
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_issued_keys_are_bounded_per_client(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = guarded_config(fake.base_url, ops(), client("app", OLD), client("other", NEW))
    config["auth"]["max_issued_keys"] = 2
    router = await start_router(config)
    first = await issue(router, "app")
    await issue(router, "app")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await issue(router, "app")
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(caught.value)
    assert (details.reason, details.openai_code) == ("CLIENT_KEY_LIMIT", "client_key_limit")
    assert await issue(router, "other")  # another client's bound is its own
    await router.admin.RevokeClientKey(
        admin_pb.RevokeClientKeyRequest(id=first.info.id), metadata=bearer(OPS)
    )
    assert await issue(router, "app")  # a place was freed


async def test_bad_issue_requests_are_typed(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(guarded_config(fake.base_url, ops(), client("app", OLD)))
    cases: list[tuple[dict[str, Any], grpc.StatusCode]] = [
        ({"app": "nobody"}, grpc.StatusCode.NOT_FOUND),
        ({"app": "app", "ttl_s": -1.0}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"app": "app", "label": "x" * 201}, grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for fields, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await issue(router, **fields)
        assert caught.value.code() is code
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # the admin scope only
        await router.admin.IssueClientKey(
            admin_pb.IssueClientKeyRequest(client="app"), metadata=bearer(OLD)
        )
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_a_removed_clients_issued_keys_are_refused_and_listed_as_orphaned(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    both = guarded_config(fake.base_url, ops(), client("app", OLD), client("gone", NEW))
    router = await start_router(both)
    issued = await issue(router, "gone", "laptop")
    assert await router.stub.Chat(chat(), metadata=bearer(issued.key))

    without = guarded_config(fake.base_url, ops(), client("app", OLD))
    await router.server.reload(SwitchboardConfig.model_validate(without))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(), metadata=bearer(issued.key))
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    assert [(k.client, k.orphaned) for k in listed.keys] == [("gone", True)]

    await router.server.reload(SwitchboardConfig.model_validate(both))  # the client is back
    assert await router.stub.Chat(chat(), metadata=bearer(issued.key))


CENTURY_S = 100 * 365 * 86400.0


@pytest.mark.parametrize(
    "ttl_s", [1e300, 1e12, CENTURY_S + 1.0], ids=["1e300", "past-9999", "101y"]
)
async def test_a_ttl_past_a_century_is_refused_naming_the_field(
    fake: FakeUpstream, start_router: StartRouter, ttl_s: float
) -> None:
    clock = ManualClock(START)
    router = await start_router(
        guarded_config(fake.base_url, ops(), client("app", OLD)), clock=clock
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await issue(router, "app", "forever-ish", ttl_s=ttl_s)

    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = details_from_rpc_error(caught.value)
    assert [field for field, _ in details.field_violations] == ["ttl_s"]
    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    assert list(listed.keys) == []  # nothing issued
    longest = await issue(router, "app", "a century", ttl_s=CENTURY_S)  # the bound itself: taken
    assert longest.info.expires_unix == START + CENTURY_S
