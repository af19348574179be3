"""An issued key's label (`switchboard admin keys issue --label`) is shown wherever the key is:
IssueClientKey's and ListClientKeys' answers, ListClients (the CLI, the edge's admin page), audit
lines. A secret-shaped label (a key or a password the operator pasted there) is refused at issue,
never echoed; one written to the store's log before that rule (or by an older replica) is
shown as `[redacted]` everywhere."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc
import httpx
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.auth.test_client_keys import OLD, OPS, START, issue, ops, sdk_says

pytestmark = pytest.mark.timeout(60)

SECRET_SHAPED = [
    "sk-live-0123456789abcdef",
    "prod key sk-proj-abcdefghijklmnop",
    "Bearer hunter2-token-xyz",
    "redis://:hunter2-pw@cache:6379",
    "AIzaSyA1234567890abcdefghijklmn",
    "x-api-key: hunter2-key-value",
]


async def test_a_secret_shaped_label_is_refused_never_echoed(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(guarded_config(fake.base_url, ops(), client("app", OLD)))
    for label in SECRET_SHAPED:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await issue(router, "app", label)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert details_from_rpc_error(caught.value).openai_param == "label"
        said = str(caught.value.details()) + str(caught.value.debug_error_string())
        assert "hunter2" not in said and "0123456789" not in said and "abcdefgh" not in said
    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    assert not listed.keys  # none issued
    assert (await issue(router, "app", "ci-deploy (sk- keys rotate weekly)")).info.label


async def test_a_secret_shaped_label_already_in_the_log_is_shown_masked(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Written as an older router wrote it (no check at issue): the store's log keeps it for
    ever, and each replica's mirror shows it masked."""
    router = await start_router(
        guarded_config(fake.base_url, ops(), client("app", OLD)), clock=ManualClock(START)
    )
    edge = await start_edge(router)
    secret, _ = await router.runtime.issued_keys.issue("app", SECRET_SHAPED[3], None)
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    assert await sdk_says(edge, secret)

    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    clients = await router.admin.ListClients(admin_pb.ListClientsRequest(), metadata=bearer(OPS))
    (app,) = [c for c in clients.clients if c.name == "app"]
    assert [k.label for k in listed.keys] == ["[redacted]"]
    assert [k.label for k in app.keys] == ["", "[redacted]"]
    admitted = next(r.__dict__ for r in caplog.records if r.name == "switchboard.audit")
    assert admitted["key_label"] == "[redacted]"
    for shown in (str(listed), str(clients), caplog.text):
        assert "hunter2" not in shown


async def test_a_label_holding_a_configured_secret_of_any_shape_is_refused(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A provider's key of a shape no pattern knows (Groq's `gsk_…`, a Cohere key's 40
    characters) is still known to the router: its own config. Pasted as a label, it was kept
    and shown by every list and the admin page; SetKeyEnabled's reason masks the same ones."""
    groq = "gsk_hunter2Groq0123456789abcdefghij"
    config = guarded_config(fake.base_url, ops(), client("app", OLD))
    config["providers"]["alpha"]["keys"].append(groq)
    router = await start_router(config)
    for label in (groq, f"ops laptop ({groq})"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await issue(router, "app", label)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert details_from_rpc_error(caught.value).openai_param == "label"
        assert "hunter2" not in str(caught.value.details())
    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    assert not listed.keys  # none issued
    assert (await issue(router, "app", "ops laptop (groq)")).info.label == "ops laptop (groq)"


async def test_a_label_holding_a_configured_secret_already_in_the_log_is_shown_masked(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Callable[..., Awaitable[Edge]]
) -> None:
    """A provider's key of no known shape, written as a label before IssueClientKey refused
    configured secrets (or pasted as one before the key went into the config): every list
    masks it when it reads it, as it masks a secret-shaped one — ListClientKeys,
    RevokeClientKey, ListClients and the edge's admin page (`/admin/api/clients`)."""
    groq = "gsk_hunter2Groq0123456789abcdefghij"
    config = guarded_config(fake.base_url, ops(), client("app", OLD))
    config["providers"]["alpha"]["keys"].append(groq)
    router = await start_router(config)
    edge = await start_edge(router, admin_token="edge-admin-token", admin_router_key=OPS)
    await router.runtime.issued_keys.issue("app", f"ops laptop ({groq})", None)
    key_id = (await router.runtime.issued_keys.issue("app", groq, None))[1].id

    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    clients = await router.admin.ListClients(admin_pb.ListClientsRequest(), metadata=bearer(OPS))
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        page = await http.get(
            "/admin/api/clients", headers={"authorization": "Bearer edge-admin-token"}
        )
    revoked = await router.admin.RevokeClientKey(
        admin_pb.RevokeClientKeyRequest(id=key_id), metadata=bearer(OPS)
    )
    assert page.status_code == 200
    assert sorted(k.label for k in listed.keys) == ["[redacted]", "[redacted]"]
    assert revoked.key.label == "[redacted]"
    for shown in (str(listed), str(clients), page.text, str(revoked)):
        assert "hunter2" not in shown


# A client's key configured by its hash alone (`key_sha256`), of a shape no pattern knows: the
# router holds no clear text of it to search a label for, only its hash.
HASHED = "opensesame-hunter2-kitchen"


async def test_a_label_holding_a_client_key_known_by_its_hash_alone_is_refused(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = guarded_config(fake.base_url, ops(), client("app", OLD), client("ci", HASHED))
    router = await start_router(config)
    for label in (HASHED, f"ci laptop ({HASHED})", f"key={HASHED}", f"'{HASHED}',"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await issue(router, "app", label)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert details_from_rpc_error(caught.value).openai_param == "label"
        assert "hunter2" not in str(caught.value.details())
    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    assert not listed.keys  # none issued
    assert (await issue(router, "app", "ci laptop (opensesame)")).info.label == (
        "ci laptop (opensesame)"
    )


async def test_a_label_holding_a_client_key_known_by_its_hash_is_never_shown(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Written before IssueClientKey refused it: every list, the edge's admin page, and the
    audit lines of the key's calls and of its revocation show it masked."""
    config = guarded_config(fake.base_url, ops(), client("app", OLD), client("ci", HASHED))
    router = await start_router(config, clock=ManualClock(START))
    edge = await start_edge(router, admin_token="edge-admin-token", admin_router_key=OPS)
    secret, issued = await router.runtime.issued_keys.issue("app", f"ci laptop ({HASHED})", None)
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    assert await sdk_says(edge, secret)

    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    clients = await router.admin.ListClients(admin_pb.ListClientsRequest(), metadata=bearer(OPS))
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        page = await http.get(
            "/admin/api/clients", headers={"authorization": "Bearer edge-admin-token"}
        )
    revoked = await router.admin.RevokeClientKey(
        admin_pb.RevokeClientKeyRequest(id=issued.id), metadata=bearer(OPS)
    )
    assert page.status_code == 200
    assert [k.label for k in listed.keys] == [revoked.key.label] == ["[redacted]"]
    labels = [r.__dict__.get("key_label") for r in caplog.records if r.name == "switchboard.audit"]
    assert labels.count("[redacted]") == 2  # its call's line and its revocation's
    for shown in (str(listed), str(clients), page.text, str(revoked), caplog.text, str(labels)):
        assert "hunter2" not in shown


async def test_a_client_key_known_by_its_hash_is_found_whatever_punctuation_it_is_glued_to(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Pasted against a comma, a slash, a pipe, a quote's `'s`: no space around it, yet the
    key is in the label whole and would be shown by every list."""
    config = guarded_config(fake.base_url, ops(), client("app", OLD), client("ci", HASHED))
    router = await start_router(config)
    glued = (
        f"{HASHED},backup",
        f"ci/{HASHED}",
        f"{HASHED}|ci",
        f"laptop:{HASHED}'s",
        f"[key={HASHED}](ci)",
        f"ci@{HASHED};",
    )
    for label in glued:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await issue(router, "app", label)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, label
        assert "hunter2" not in str(caught.value.details())
    listed = await router.admin.ListClientKeys(
        admin_pb.ListClientKeysRequest(), metadata=bearer(OPS)
    )
    assert not listed.keys  # none issued
    assert (await issue(router, "app", "ci/laptop,opensesame|kitchen")).info.label


async def test_a_client_key_known_by_its_hash_in_a_disables_reason_is_never_shown(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """SetKeyEnabled's note is masked of every configured secret, as a label is refused for
    one: a client's key configured by its hash alone too (ListKeys, the store, the audit)."""
    config = guarded_config(fake.base_url, ops(), client("ci", HASHED))
    router = await start_router(config)
    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest(), metadata=bearer(OPS))
    first = listed.keys[0].fingerprint
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    reason = f"ci's key {HASHED} and this one leaked together (ticket 42: ci/{HASHED},x)"
    toggled = await router.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(fingerprint=first, enabled=False, reason=reason),
        metadata=bearer(OPS),
    )
    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest(), metadata=bearer(OPS))
    for shown in (str(toggled.key), *map(str, listed.keys), caplog.text):
        assert "hunter2" not in shown
    (note,) = {k.disabled_note for k in listed.keys if k.disabled_note}
    assert note == "ci's key [redacted] and this one leaked together (ticket 42: ci/[redacted],x)"
