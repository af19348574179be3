"""`/admin/api/jobs` (and the status page's `jobs`) on the real edge in front of a real router
with a batch, a background response and a Realtime session open: each shown, no secret; a bad
`limit` is the OpenAI error JSON."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from http_edge import EdgeSettings
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from tests.conftest import StartRouter
from tests.http_edge.harness import start_edge, stop_edge
from tests.router_service.server.busy_router import OPS, SECRETS, busy, jobs_config

pytestmark = pytest.mark.timeout(60)

TOKEN = "edge-admin-token-jobs"
ADMIN = {"authorization": f"Bearer {TOKEN}"}


async def test_the_jobs_running_as_json(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(jobs_config(fake))
    address = router.server.address
    edge = await start_edge(
        EdgeSettings(
            router_target=address, admin_token=SecretStr(TOKEN), admin_router_key=SecretStr(OPS)
        )
    )
    try:
        async with httpx.AsyncClient(base_url=edge.base_url, headers=ADMIN) as http:
            async with busy(router, fake) as running:
                jobs = await http.get("/admin/api/jobs", params={"limit": "3"})
                status = await http.get("/admin/api/status")
            not_a_number = await http.get("/admin/api/jobs", params={"limit": "x"})
            too_many = await http.get("/admin/api/jobs", params={"limit": "501"})
            # Digits to `str.isdigit` that `int` refuses, and past the call's int32: the
            # caller's 400, never the edge's 500.
            odd = [
                await http.get("/admin/api/jobs", params={"limit": limit})
                for limit in ("\u00b2", "9" * 12, "9" * 5000)
            ]
            unauthorized = await http.get("/admin/api/jobs", headers={"authorization": "Bearer no"})
    finally:
        await stop_edge(edge)
    assert jobs.status_code == 200 and jobs.headers["cache-control"] == "no-store"
    view = jobs.json()
    (batch,) = view["batches"]
    assert (batch["id"], batch["client"]) == (running.batch_id, "app")
    assert batch["status"] == "in_progress"
    assert batch["request_counts"] == {"total": 1, "completed": 0, "failed": 0}
    assert batch["replica"] == view["replica"] and batch["expires_in_s"] > 0
    assert view["batches_unknown"] is False  # this replica reads the shared state
    (response,) = view["background"]
    assert (response["id"], response["model"], response["status"]) == (
        running.response_id,
        "chain",
        "in_progress",
    )
    (session,) = view["realtime"]
    assert session["key_fingerprint"] == fingerprint("sk-alpha-1")
    assert (session["events_from_caller"], session["events_to_caller"]) == (1, 2)
    assert [b["id"] for b in status.json()["jobs"]["batches"]] == [running.batch_id]
    for answer in (jobs, status):
        assert not any(secret in answer.text for secret in SECRETS)
    assert not_a_number.status_code == too_many.status_code == 400
    assert not_a_number.json()["error"]["param"] == too_many.json()["error"]["param"] == "limit"
    assert [(answer.status_code, answer.json()["error"]["param"]) for answer in odd] == [
        (400, "limit"),
        (400, "limit"),
        (400, "limit"),
    ]
    assert unauthorized.status_code == 401
