"""AdminService.ListJobs: the long-running work as an operator sees it. Batches come from the
running index in the state store (every replica's, with the replica holding each one's claim);
background responses and Realtime sessions are the answering replica's own. Clients by name,
upstream keys by fingerprint: never a secret."""

from __future__ import annotations

from dataclasses import dataclass

from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service.errors import InvalidRequestError
from router_service.runtime import Runtime
from router_service.server._background import BackgroundJobs
from router_service.server._batch_job import claim_replica
from router_service.server._open_sessions import OpenSessions
from router_service.server._server_info import replica_name

__all__ = ["LongJobs", "list_jobs"]

_DEFAULT_LIMIT = 50
_MAX_LIMIT = 500


@dataclass(frozen=True)
class LongJobs:
    """What this process runs beyond a call (they outlive reloads)."""

    background: BackgroundJobs
    realtime: OpenSessions


async def list_jobs(runtime: Runtime, jobs: LongJobs, limit: int) -> pb.ListJobsResponse:
    limit = limit or _DEFAULT_LIMIT
    if not 1 <= limit <= _MAX_LIMIT:
        raise InvalidRequestError(f"`limit` must be 1 to {_MAX_LIMIT}.", param="limit")
    answer = pb.ListJobsResponse(replica=replica_name())
    unended = await runtime.batches.unended()
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
