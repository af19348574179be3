"""AdminService.ListJobs on a real router over gRPC: with a batch, a background response and a
Realtime session open, an admin key sees each (clients by name, the upstream key by
fingerprint, never a secret); a key without the admin scope is refused; once they end, none.
CancelClientBatch: an admin cancels any client's batch, audited with its name (and the call's
request id)."""

from __future__ import annotations

import logging

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import batches_pb2
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import bearer, client
from tests.router_service.server.busy_router import APP, OPS, SECRETS, busy, jobs_config

pytestmark = pytest.mark.timeout(60)


async def test_an_admin_sees_the_batches_responses_and_sessions_running(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(jobs_config(fake))
    admin = router.admin
    async with busy(router, fake) as running:
        listed = await admin.ListJobs(admin_pb.ListJobsRequest(), metadata=bearer(OPS))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await admin.ListJobs(admin_pb.ListJobsRequest(), metadata=bearer(APP))
        with pytest.raises(grpc.aio.AioRpcError) as too_many:
            await admin.ListJobs(admin_pb.ListJobsRequest(limit=501), metadata=bearer(OPS))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (batch,) = listed.batches
    assert (batch.id, batch.client, batch.status) == (running.batch_id, "app", "in_progress")
    assert (batch.endpoint, batch.total, batch.completed) == ("/v1/chat/completions", 1, 0)
    assert batch.in_progress_unix >= batch.created_unix > 0
    assert batch.expires_unix == batch.created_unix + 24 * 3600
    assert batch.replica == listed.replica  # this replica holds its claim
    (response,) = listed.background
    assert (response.id, response.client, response.model) == (running.response_id, "app", "chain")
    assert response.status == "in_progress" and response.started_unix > 0
    (session,) = listed.realtime
    assert (session.client, session.model_group) == ("app", "voice")
    assert session.deployment == "alpha/rt-a"
    assert session.key_fingerprint == fingerprint("sk-alpha-1")
    assert (session.events_from_caller, session.events_to_caller) == (1, 2)
    assert session.opened_unix > 0 and not listed.truncated
    for secret in SECRETS:
        assert secret not in str(listed)
    ended = await admin.ListJobs(admin_pb.ListJobsRequest(), metadata=bearer(OPS))
    assert (len(ended.batches), len(ended.background), len(ended.realtime)) == (0, 0, 0)


async def test_an_admin_cancels_any_clients_batch_audited(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router = await start_router(jobs_config(fake))
    admin = router.admin
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    async with busy(router, fake) as running:
        cancel = admin_pb.CancelClientBatchRequest(id=running.batch_id, reason="runaway")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await admin.CancelClientBatch(cancel, metadata=bearer(APP))
        said = (*bearer(OPS), ("x-request-id", "req-cancel"))
        cancelled = await admin.CancelClientBatch(cancel, metadata=said)
        listed = await admin.ListJobs(admin_pb.ListJobsRequest(), metadata=bearer(OPS))
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await admin.CancelClientBatch(cancel, metadata=bearer(OPS))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (cancelled.client, cancelled.batch.status) == ("app", "cancelled")
    assert [b.id for b in listed.batches] == []  # ended: out of the running index
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    mine = batches_pb2.GetBatchRequest(id=running.batch_id)
    assert (await router.stub.GetBatch(mine, metadata=bearer(APP))).batch.status == "cancelled"
    audited = [r.__dict__ for r in caplog.records if r.name == "switchboard.audit"]
    (line,) = [fields for fields in audited if fields.get("event") == "admin"]
    assert line["client"] == "ops" and line["outcome"] == "success"
    assert line["request_id"] == "req-cancel"  # what the operator's edge or tool said
    assert line["reason"] == f"cancelled batch {running.batch_id} of client 'app': 'runaway'"


async def test_a_cancels_reason_is_audited_without_a_client_key_known_by_its_hash(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """The log masks every configured secret it has the clear text of; a client's key
    configured by its hash alone (of no key's shape) it cannot: the reason quoted in the audit
    line is masked of it as SetKeyEnabled's note is (`without_digests`)."""
    hashed = "opensesame-hunter2-kitchen"
    config = jobs_config(fake)
    config["auth"]["clients"].append(client("ci", hashed))
    router = await start_router(config)
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    async with busy(router, fake) as running:
        why = f"ci's key {hashed} leaked (ticket 42: ci/{hashed},x)"
        cancel = admin_pb.CancelClientBatchRequest(id=running.batch_id, reason=why)
        await router.admin.CancelClientBatch(cancel, metadata=bearer(OPS))
    assert "hunter2" not in caplog.text
    audited = [r.__dict__ for r in caplog.records if r.name == "switchboard.audit"]
    (line,) = [fields for fields in audited if fields.get("event") == "admin"]
    said = repr("ci's key [redacted] leaked (ticket 42: ci/[redacted],x)")
    assert line["reason"] == f"cancelled batch {running.batch_id} of client 'app': {said}"


@pytest.mark.parametrize(
    ("batch_id", "code"),
    [("", grpc.StatusCode.INVALID_ARGUMENT), ("b" * 129, grpc.StatusCode.NOT_FOUND)],
)
async def test_a_batch_id_no_batch_can_have_is_answered_as_for_its_client(
    fake: FakeUpstream, start_router: StartRouter, batch_id: str, code: grpc.StatusCode
) -> None:
    """As GetBatch and CancelBatch answer the batch's own client: none is malformed (a
    NOT_FOUND said "No batch found with id ''"), an over-long one a batch it does not have
    (its first bytes repeated only)."""
    router = await start_router(jobs_config(fake))
    cancel = admin_pb.CancelClientBatchRequest(id=batch_id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.admin.CancelClientBatch(cancel, metadata=bearer(OPS))
    assert refused.value.code() == code
    assert details_from_rpc_error(refused.value).openai_param == "id"
    assert "b" * 129 not in (refused.value.details() or "")
