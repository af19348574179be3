"""The edge's admin surface against a real router: `/admin` (the status page), `/admin/api/status`
and `/admin/keys` (issue #3), behind `edge.admin_token`, reaching the router's AdminService with
`edge.admin_router_key` or the caller's own credentials."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from clients.switchboard.v1.admin_service_pb2_grpc import AdminServiceServicer
from http_edge import EdgeSettings
from router_service.auth import hash_key
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from router_service.server._admin_servicer import AdminServicer
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.http_edge.harness import Edge, stop_edge
from tests.http_edge.harness import start_edge as start_edge_on

StartEdge = Callable[..., Awaitable[Edge]]
TOKEN = "edge-admin-token"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
CHAT = {"model": "chain", "messages": [{"role": "user", "content": "hi"}]}


async def traffic(edge: Edge, fake: FakeUpstream) -> None:
    """One fallback (alpha/model-a cools down) and one key disabled (sk-alpha-1)."""
    fake.state.set_scenario(Scenario.invalid_key(), key="sk-alpha-1")
    fake.state.set_scenario(Scenario.server_error(503), key="sk-alpha-2")
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        response = await http.post("/v1/chat/completions", json=CHAT)
    assert response.headers["x-switchboard-deployment"] == "beta/model-b"


@pytest.fixture
async def start_edge() -> AsyncIterator[StartEdge]:
    """The real edge in front of a real router (this package's `start_edge` is the stub's)."""
    edges: list[Edge] = []

    async def start(router: RouterHandle, **settings: Any) -> Edge:
        edge_settings = EdgeSettings(router_target=router.server.address, **settings)
        edges.append(await start_edge_on(edge_settings))
        return edges[-1]

    yield start
    for edge in edges:
        await stop_edge(edge)


@pytest.fixture
async def opened(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> tuple[RouterHandle, Edge]:
    router = await start_router(base_config(fake.base_url))
    return router, await start_edge(router, admin_token=TOKEN)


async def get(edge: Edge, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        return await http.get(path, headers=headers)


async def test_keys_by_fingerprint_with_their_state(
    opened: tuple[RouterHandle, Edge], fake: FakeUpstream
) -> None:
    _, edge = opened
    await traffic(edge, fake)

    response = await get(edge, "/admin/keys", ADMIN)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    keys = response.json()["keys"]
    assert {(k["provider"], k["state"]) for k in keys} == {
        ("alpha", "disabled"),
        ("alpha", "active"),
        ("beta", "active"),
    }
    disabled = next(k for k in keys if k["state"] == "disabled")
    assert disabled["fingerprint"].startswith("fp_")
    assert disabled["last_outcome"] == "AUTH_INVALID" and disabled["left_s"] > 0
    assert (disabled["disabled_reason"], disabled["disabled_note"]) == ("auth", None)
    assert "sk-alpha" not in response.text and "sk-beta" not in response.text
    only_beta = (await get(edge, "/admin/keys?provider=beta", ADMIN)).json()["keys"]
    assert [k["provider"] for k in only_beta] == ["beta"]


async def test_status_has_deployments_groups_cooldowns_and_sessions(
    opened: tuple[RouterHandle, Edge], fake: FakeUpstream
) -> None:
    _, edge = opened
    await traffic(edge, fake)

    status: dict[str, Any] = (await get(edge, "/admin/api/status", ADMIN)).json()
    deployments = {d["deployment"]: d for d in status["deployments"]}
    assert deployments["alpha/model-a"]["cooldown_left_s"] > 0
    assert deployments["alpha/model-a"]["failures"] == 1
    assert deployments["beta/model-b"]["successes"] == 1
    assert deployments["beta/model-b"]["cooldown_left_s"] is None
    groups = {g["name"]: g for g in status["groups"]}
    assert groups["chain"]["deployments"] == ["alpha/model-a", "beta/model-b"]
    assert groups["chain"]["kind"] == "group"
    assert status["keys_by_state"]["alpha"] == {"active": 1, "cooling": 0, "disabled": 1}
    scopes = {(c["scope"], c["name"].split(":")[0]) for c in status["cooldowns"]}
    assert ("deployment", "alpha/model-a") in scopes and ("key", "alpha") in scopes
    assert {s["provider"] for s in status["sessions"]} == {"alpha", "beta"}
    server = status["server"]  # the replica that answered (AdminService.GetServerInfo)
    assert server["replica"] == f"{socket.gethostname()}:{os.getpid()}"
    assert (server["state_backend"], server["state_degraded"]) == ("memory", False)
    assert server["reload_error"] is None and server["certificate_left_s"] is None
    assert server["up_s"] >= 0


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        (None, "missing_api_key"),
        ({"authorization": "Bearer wrong"}, "invalid_api_key"),
        ({"authorization": "wrong"}, "invalid_api_key"),
        ({"x": "y"}, "missing_api_key"),
    ],
)
async def test_a_wrong_or_missing_token_is_401(
    opened: tuple[RouterHandle, Edge], headers: dict[str, str] | None, code: str
) -> None:
    _, edge = opened
    for path in ("/admin/keys", "/admin/api/status", "/admin/api/clients"):
        response = await get(edge, path, headers)
        assert response.status_code == 401
        error = response.json()["error"]
        # As the router's own 401s (the edge passes them on): OpenAI's four fields.
        assert error == {
            "message": error["message"],
            "type": "authentication_error",
            "param": None,
            "code": code,
        }


async def test_the_page_and_its_assets_carry_no_data(opened: tuple[RouterHandle, Edge]) -> None:
    _, edge = opened
    page = await get(edge, "/admin")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/admin/static/admin.js" in page.text and "fp_" not in page.text
    script = await get(edge, "/admin/static/admin.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await get(edge, "/admin/static/index.html")).status_code == 404
    assert (await get(edge, "/admin/static/..%2F_admin.py")).status_code == 404


async def test_the_page_cannot_be_framed_or_run_foreign_code(
    opened: tuple[RouterHandle, Edge],
) -> None:
    """The tab holds the admin token: the page and its assets forbid framing, inline or foreign
    scripts, requests to other origins and content sniffing (the browser test renders it so)."""
    _, edge = opened
    for path in ("/admin", "/admin/static/admin.js", "/admin/static/admin.css"):
        headers = (await get(edge, path)).headers
        policy = dict(
            part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
        assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"


async def test_without_an_admin_token_there_are_no_admin_routes(
    router: RouterHandle, start_edge: StartEdge
) -> None:
    edge = await start_edge(router)
    paths = ("/admin", "/admin/keys", "/admin/api/status", "/admin/api/clients")
    for path in (*paths, "/admin/static/admin.js"):
        assert (await get(edge, path, ADMIN)).status_code == 404


def guarded(fake_url: str) -> dict[str, Any]:
    """A router that wants keys: `ops` may use AdminService, `app` may only chat."""
    return base_config(
        fake_url,
        auth={
            "clients": [
                {"name": "ops", "key": "router-admin-key", "scopes": ["admin"]},
                {"name": "app", "key": "router-app-key"},
            ]
        },
    )


async def test_the_configured_router_key_reaches_the_admin_service(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    router = await start_router(guarded(fake.base_url))
    edge = await start_edge(router, admin_token=TOKEN, admin_router_key="router-admin-key")
    response = await get(edge, "/admin/keys", ADMIN)
    assert response.status_code == 200 and len(response.json()["keys"]) == 3


@pytest.mark.parametrize("router_key", ["router-revoked-key", "router-app-key"])
async def test_a_router_key_the_router_refuses_is_the_edges_fault_not_the_callers(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, router_key: str
) -> None:
    """Unknown, or without the admin scope: the admin token was right, so no 401 or 403 that
    reads as "your token is wrong" (the page would sign the operator out): a 502 naming the
    setting, never the key."""
    router = await start_router(guarded(fake.base_url))
    edge = await start_edge(router, admin_token=TOKEN, admin_router_key=router_key)
    for path in ("/admin/keys", "/admin/api/status", "/admin/api/clients", "/admin/api/jobs"):
        response = await get(edge, path, ADMIN)
        assert response.status_code == 502, path
        error = response.json()["error"]
        assert "edge.admin_router_key" in error["message"]
        assert error["code"] == "admin_router_key_refused"
        assert router_key not in response.text


async def test_a_refused_router_key_stays_the_edges_fault_once_the_router_throttles_it(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Each admin call carrying the refused key is an unknown key to the router, from the
    caller's address the edge names: past `auth.admin_throttle.per_address` (10) the router
    refuses them all unread. Still the edge's setting at fault, not the caller's address."""
    config = guarded(fake.base_url)
    config["auth"]["admin_throttle"] = {"per_address": 3, "overall": 100, "window_s": 60}
    router = await start_router(config, clock=ManualClock())
    edge = await start_edge(router, admin_token=TOKEN, admin_router_key="router-revoked-key")
    answers = [await get(edge, "/admin/keys", ADMIN) for _ in range(5)]

    assert [answer.status_code for answer in answers] == [502] * 5
    for answer in answers:
        error = answer.json()["error"]
        assert error["code"] == "admin_router_key_refused"
        assert "edge.admin_router_key" in error["message"]
        assert "router-revoked-key" not in answer.text
    assert answers[-1].headers["retry-after"] == "60"


async def test_a_callers_address_past_the_key_throttle_is_its_429_not_the_router_keys_fault(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Wrong client keys from the operator's address (`auth.key_throttle`: an app behind the
    same NAT) get its admin calls refused too: the router key is right, so no 502 telling the
    operator to change it, but the address's 429 with its Retry-After."""
    config = guarded(fake.base_url)
    config["auth"]["key_throttle"] = {"per_address": 3, "window_s": 60}
    router = await start_router(config, clock=ManualClock())
    edge = await start_edge(router, admin_token=TOKEN, admin_router_key="router-admin-key")
    office = {"x-forwarded-for": "203.0.113.7"}  # uvicorn trusts loopback's X-Forwarded-For
    wrong = {**office, "authorization": "Bearer sk-stale-app-key"}
    guesses = [(await get(edge, "/v1/models", wrong)).status_code for _ in range(3)]

    refused = await get(edge, "/admin/keys", {**ADMIN, **office})
    elsewhere = await get(edge, "/admin/keys", {**ADMIN, "x-forwarded-for": "198.51.100.20"})

    assert guesses == [401] * 3
    error = refused.json()["error"]
    assert refused.status_code == 429 and error["code"] == "too_many_failed_authentications"
    assert "edge.admin_router_key" not in error["message"]
    assert refused.headers["retry-after"] == "60"
    assert elsewhere.status_code == 200


async def test_without_a_router_key_the_callers_own_credentials_are_forwarded(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    router = await start_router(guarded(fake.base_url))
    edge = await start_edge(router, admin_token="router-admin-key")  # one secret for both
    assert (await get(edge, "/admin/keys", {"authorization": "Bearer router-admin-key"})).is_success

    other = await start_edge(router, admin_token=TOKEN)  # the router does not know this one
    response = await get(other, "/admin/keys", ADMIN)
    assert response.status_code == 401
    assert "fp_" not in response.text


async def test_clients_with_their_limits_and_what_they_used(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    noon = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC).timestamp()
    config = guarded(fake.base_url)
    config["auth"]["clients"][1] |= {"rpm": 60, "tokens_per_day": 10_000, "usd_per_month": 2.5}
    config["providers"]["alpha"]["price"] = {"input_per_mtok": 3, "output_per_mtok": 15}
    router = await start_router(config, clock=ManualClock(noon))
    edge = await start_edge(router, admin_token=TOKEN, admin_router_key="router-admin-key")
    app = {"authorization": "Bearer router-app-key"}
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        answers = [(await http.post("/v1/chat/completions", json=CHAT, headers=app)) for _ in "ab"]
    spent = sum(answer.json()["usage"]["total_tokens"] for answer in answers)

    response = await get(edge, "/admin/api/clients", ADMIN)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    ops, client = body["clients"]
    assert (ops["name"], ops["scopes"], ops["rpm"], ops["budgets"]) == ("ops", ["admin"], None, [])
    assert client["name"] == "app" and client["models"] == ["*"]
    assert (client["rpm"], client["tpm"], client["minute_requests"]) == (60, None, 2)
    assert client["minute_tokens"] is None  # no tpm: tokens are not counted by the minute
    (day,) = client["budgets"]
    midnight = noon + 12 * 3600
    assert (day["period"], day["limit"], day["used"], day["resets_unix"]) == (
        "day",
        10_000,
        spent,
        midnight,
    )
    assert day["resets_in_s"] == round(max(0.0, midnight - body["generated_at"]), 1)
    (month,) = client["spend_budgets"]
    cost = sum(float(answer.headers["x-switchboard-cost-usd"]) for answer in answers)
    assert (month["period"], month["limit_usd"]) == ("month", 2.5)
    assert month["used_usd"] == pytest.approx(cost, abs=1e-6) and cost > 0
    assert month["resets_unix"] == dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
    stored = client["stored_responses"]  # Responses API: none stored yet
    assert (stored["used"], stored["quota"], stored["resets_unix"]) == (0, 64 << 20, noon + 3600)
    assert client["cached_answers"] is None  # the cache is off
    conversations = client["conversations"]  # none written yet; 30 days' period
    assert (conversations["used"], conversations["quota"]) == (0, 256 << 20)
    (key,) = client["keys"]  # by fingerprint, never the key nor its hash
    assert (key["id"], key["fingerprint"], key["expires_unix"]) == (
        "",
        fingerprint("router-app-key"),
        None,
    )
    for secret in ("router-admin-key", "router-app-key", TOKEN):
        assert secret not in response.text and hash_key(secret) not in response.text
    status = (await get(edge, "/admin/api/status", ADMIN)).json()
    assert [c["name"] for c in status["clients"]] == ["ops", "app"]  # the page's table


async def test_the_status_page_from_a_router_without_list_jobs(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rolling upgrade puts a new edge before an old router: its ListJobs is UNIMPLEMENTED
    (the generated servicer's own), and the rest of the status page still shows."""
    monkeypatch.setattr(AdminServicer, "ListJobs", AdminServiceServicer.ListJobs)
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(router, admin_token=TOKEN)
    response = await get(edge, "/admin/api/status", ADMIN)
    jobs = await get(edge, "/admin/api/jobs", ADMIN)
    assert response.status_code == 200
    view = response.json()
    assert view["jobs"] is None
    assert {row["provider"] for row in view["keys"]} == {"alpha", "beta"}
    assert jobs.status_code == 501  # asked for alone, the router's answer as it is


async def test_a_deployment_that_refused_stream_options_says_so(
    opened: tuple[RouterHandle, Edge], fake: FakeUpstream
) -> None:
    _, edge = opened
    fake.state.set_scenario(Scenario(refuses_stream_options=True), model="model-a")
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        async with http.stream("POST", "/v1/chat/completions", json=CHAT | {"stream": True}) as r:
            assert r.status_code == 200 and b"[DONE]" in await r.aread()
    assert [c.body.get("stream_options") for c in fake.state.calls()] == [
        {"include_usage": True},
        None,
    ]

    status: dict[str, Any] = (await get(edge, "/admin/api/status", ADMIN)).json()
    refused = [d["deployment"] for d in status["deployments"] if d["stream_options_refused"]]
    assert refused == ["alpha/model-a"]
    assert all(isinstance(d["stream_options_refused"], bool) for d in status["deployments"])
