"""The long-running work as the admin page and `/admin/api/jobs` show it: AdminService.ListJobs
in JSON, with times as seconds ago / left (as the page's other tables). Clients by name, upstream
keys by fingerprint: the router's answer names no secret, so neither does this."""

from __future__ import annotations

from typing import Any

from clients.switchboard.v1 import admin_service_pb2 as admin_pb

__all__ = ["jobs_view"]


def _ago(unix: float, now: float) -> float | None:
    return round(max(0.0, now - unix), 1) if unix else None


def jobs_view(listed: admin_pb.ListJobsResponse, now: float) -> dict[str, Any]:
    batches = [
        {
            "id": b.id,
            "client": b.client,
            "endpoint": b.endpoint,
            "status": b.status,
            "request_counts": {"total": b.total, "completed": b.completed, "failed": b.failed},
            "age_s": _ago(b.created_unix, now),
            "in_progress_s": _ago(b.in_progress_unix, now),
            "expires_in_s": round(max(0.0, b.expires_unix - now), 1),
            # None: nobody holds it now (another replica takes it over).
            "replica": b.replica or None,
        }
        for b in listed.batches
    ]
    background = [
        {
            "id": j.id,
            "client": j.client,
            "model": j.model,
            "status": j.status,
            "age_s": _ago(j.started_unix, now),
        }
        for j in listed.background
    ]
    realtime = [
        {
            "client": s.client,
            "model": s.model_group,
            "deployment": s.deployment,
            "key_fingerprint": s.key_fingerprint,
            "age_s": _ago(s.opened_unix, now),
            "events_from_caller": s.events_from_caller,
            "events_to_caller": s.events_to_caller,
        }
        for s in listed.realtime
    ]
    return {
        "replica": listed.replica,
        "batches": batches,
        "background": background,
        "realtime": realtime,
        "truncated": listed.truncated,
        # The replica that answered cannot reach the state store: `batches` is empty, unknown.
        "batches_unknown": listed.batches_unknown,
    }
