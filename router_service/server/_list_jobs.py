"""AdminService.ListJobs: the long-running work as an operator sees it. Batches come from the
running index in the state store (every replica's, with the replica holding each one's claim);
background responses and Realtime sessions are the answering replica's own. Clients by name,
upstream keys by fingerprint: never a secret. And CancelClientBatch: an operator's cancel of any
client's batch, audited."""

from __future__ import annotations

import grpc

from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service._ids import looked_up_id
from router_service._masking import without_digests
from router_service.batches import BatchNotFoundError, answered_locally, shared_throughout
from router_service.errors import InvalidRequestError
from router_service.runtime import Runtime
from router_service.server._answer_audit import audited_change
from router_service.server._batch_job import claim_replica
from router_service.server._long_jobs import LongJobs
from router_service.server._server_info import replica_name

__all__ = ["cancel_client_batch", "list_jobs"]

_DEFAULT_LIMIT = 50
_NOT_KNOWN_NOW = (
    "The shared state store is unreachable from this replica: which batches run is not known "
    "here, and none can be cancelled now; try again shortly."
)
_MAX_LIMIT = 500


async def list_jobs(runtime: Runtime, jobs: LongJobs, limit: int) -> pb.ListJobsResponse:
    limit = limit or _DEFAULT_LIMIT
    if not 1 <= limit <= _MAX_LIMIT:
        raise InvalidRequestError(f"`limit` must be 1 to {_MAX_LIMIT}.", param="limit")
    answer = pb.ListJobsResponse(replica=replica_name())
    store = runtime.store
    before = store.outage_counts()
    unended = await runtime.batches.unended()
    # Read on local state (Redis lost): not the batches of every replica, nor none.
    if answered_locally(store, before):
        answer.batches_unknown = True
        unended = []
    unended.sort(key=lambda owned: owned[1].created_at, reverse=True)
    shown = unended[:limit]
    holders = await runtime.batches.runs.holders([(c, b.id) for c, b in shown])
    for (client, batch), holder in zip(shown, holders, strict=True):
        counts = batch.request_counts
        answer.batches.add(
            id=batch.id,
            client=client,
            endpoint=batch.endpoint,
            status=batch.status,
            total=counts.total,
            completed=counts.completed,
            failed=counts.failed,
            created_unix=batch.created_at,
            in_progress_unix=batch.in_progress_at,
            expires_unix=batch.expires_at,
            replica=claim_replica(holder),
        )
    background = sorted(
        jobs.background.listed(), key=lambda job: job.queued.get("created_at", 0), reverse=True
    )
    for job in background[:limit]:
        answer.background.add(
            id=job.key[1],
            client=job.client,
            model=str(job.queued.get("model", "")),
            status="in_progress" if job.started else "queued",
            started_unix=float(job.queued.get("created_at", 0)),
        )
    sessions = jobs.realtime.listed()
    for session in sessions[:limit]:
        answer.realtime.add(
            client=session.client,
            model_group=session.model_group,
            deployment=session.deployment,
            key_fingerprint=session.key_fingerprint,
            opened_unix=session.opened_unix,
            events_from_caller=session.events_from_caller,
            events_to_caller=session.events_to_caller,
        )
    answer.truncated = max(len(unended), len(background), len(sessions)) > limit
    return answer


async def cancel_client_batch(
    runtime: Runtime,
    jobs: LongJobs,
    request: pb.CancelClientBatchRequest,
    call: grpc.aio.ServicerContext,
) -> pb.CancelClientBatchResponse:
    """Cancel the batch not ended with `request.id`, whichever client's, as its client would."""
    looked_up_id(request.id, "id", "batch", BatchNotFoundError)
    store = runtime.store
    store.retry_shared()  # an operator's cancel asks Redis itself, even just after it failed
    before = store.outage_counts()
    try:
        owners = [
            client
            for client, batch_id in await runtime.batches.runs.running()
            if batch_id == request.id
        ]
    finally:  # read on local state (Redis lost): a batch not found there may run elsewhere
        shared_throughout(store, before, _NOT_KNOWN_NOW)
    if not owners:
        raise BatchNotFoundError(request.id)
    client = owners[0]  # ids are random (128 bits): one client at most
    batch = await jobs.batches.cancel(runtime, client, request.id)
    # Whose batch, and why (quoted and bounded; a client's key known by its hash alone, which
    # the log cannot mask, masked).
    why = without_digests(request.reason, runtime.config.auth.key_digests)[:200]
    reason = f"cancelled batch {request.id} of client {client!r}: {why!r}"
    audited_change(call, "/switchboard.v1.AdminService/CancelClientBatch", reason)
    return pb.CancelClientBatchResponse(batch=batch, client=client)
