"""The admin surface is same-origin only: its page is the edge's own (its Content-Security-Policy
allows requests to the edge alone), so `edge.cors_origins`, given for browser clients of the
OpenAI routes, opens none of `/admin` to another origin. A page there (a hosted chat UI listed
by name, reaching an edge on the LAN by Private Network Access) could otherwise send the admin
API guesses of the token with the operator's browser, locking the operator out
(`edge.admin_throttle`), and read its answers; the OpenAI routes keep their CORS."""

from __future__ import annotations

import httpx
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.http_edge.harness import Edge
from tests.http_edge.test_admin import ADMIN, TOKEN, StartEdge, start_edge

__all__ = ["start_edge"]  # the fixture, from the admin tests

ORIGIN = "https://app.example"
PREFLIGHT = {
    "origin": ORIGIN,
    "access-control-request-method": "GET",
    "access-control-request-headers": "authorization",
    "access-control-request-private-network": "true",
}
ADMIN_PATHS = ["/admin", "/admin/api/status", "/admin/keys", "/admin/api/clients"]
# The forms the edge serves as those (`_paths.tidied`, uvicorn's decoding): none opens them
# (`//admin`, which httpx reads as a host, is in test_edge_refusal_cors.py, sent raw).
ADMIN_PATHS += ["/admin/", "/admin//keys/", "/admin/api/status?x=1", "/%61dmin/keys"]


def allowed(response: httpx.Response) -> dict[str, str]:
    """The headers by which a browser lets a page of another origin read or send."""
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-allow")}


@pytest.fixture(params=[[ORIGIN], ["*"]], ids=["named", "any"])
async def edge(
    request: pytest.FixtureRequest,
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
) -> Edge:
    router = await start_router(base_config(fake.base_url))
    return await start_edge(router, admin_token=TOKEN, cors_origins=request.param)


@pytest.mark.parametrize("path", ADMIN_PATHS)
async def test_an_admin_path_answers_no_other_origin(edge: Edge, path: str) -> None:
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        preflight = await http.options(path, headers=PREFLIGHT)
        right = await http.get(path, headers={**ADMIN, "origin": ORIGIN})
        wrong = await http.get(path, headers={"authorization": "Bearer wrong", "origin": ORIGIN})

    assert not allowed(preflight)  # the browser sends nothing with the token
    assert preflight.status_code == 405  # OPTIONS is no method of theirs
    assert right.status_code == 200 and not allowed(right)
    assert not allowed(wrong)


async def test_the_openai_routes_keep_their_cors(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        without_pna = {k: v for k, v in PREFLIGHT.items() if "private" not in k}
        preflight = await http.options("/v1/chat/completions", headers=without_pna)
        models = await http.get("/v1/models", headers={"origin": ORIGIN})

    assert preflight.status_code == 200
    assert allowed(preflight)["access-control-allow-origin"] in (ORIGIN, "*")
    assert allowed(models)["access-control-allow-origin"] in (ORIGIN, "*")
