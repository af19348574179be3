"""`switchboard admin jobs`: AdminService.ListJobs as tables for a terminal (batches of every
replica; background responses and Realtime sessions of the replica that answered)."""

from __future__ import annotations

from clients.switchboard.v1 import admin_service_pb2 as pb
from router_service.admin_cli._format import ago, count, table, until

__all__ = ["jobs_tables"]


_UNKNOWN = (
    "batches unknown: this replica cannot reach the state store (ask again, or another "
    "replica with --router)"
)


def _client(name: str) -> str:
    return name or "(anonymous)"  # an open-mode caller's


def jobs_tables(jobs: pb.ListJobsResponse, now: float) -> str:
    batches = [
        (
            b.id,
            _client(b.client),
            b.endpoint,
            b.status,
            f"{count(b.completed + b.failed)}/{count(b.total)} ({count(b.failed)} failed)",
            ago(b.created_unix, now),
            until(b.expires_unix, now),
            b.replica or "(none: to be taken over)",
        )
        for b in jobs.batches
    ]
    background = [
        (j.id, _client(j.client), j.model, j.status, ago(j.started_unix, now))
        for j in jobs.background
    ]
    realtime = [
        (
            _client(s.client),
            s.model_group,
            s.deployment,
            s.key_fingerprint,
            ago(s.opened_unix, now),
            f"{count(s.events_from_caller)} in / {count(s.events_to_caller)} out",
        )
        for s in jobs.realtime
    ]
    batch_headers = ("BATCH", "CLIENT", "ENDPOINT", "STATUS", "DONE", "CREATED", "EXPIRES")
    sections = [
        _UNKNOWN
        if jobs.batches_unknown
        else table(batches, (*batch_headers, "REPLICA")) or "no batches running",
        f"on replica {jobs.replica}:",
        table(background, ("RESPONSE", "CLIENT", "MODEL", "STATUS", "STARTED"))
        or "no background responses running",
        table(realtime, ("CLIENT", "MODEL", "DEPLOYMENT", "KEY", "OPENED", "EVENTS"))
        or "no realtime sessions open",
    ]
    if jobs.truncated:
        sections.append("(more left out: --limit N shows up to N of each)")
    return "\n\n".join(sections)
