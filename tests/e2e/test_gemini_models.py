"""Gemini's model list in pages (`GET /v1beta/models?pageSize=&pageToken=`): google-genai's
pager (`client.aio.models.list()`) and raw HTTP against the edge, over a router with more
models than a page holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.router_service.auth.helpers import client, guarded_config

pytestmark = pytest.mark.timeout(30)

GROUPS = 60  # with `chain`, `embedder` and the deployments: more than the default page (50)
KEY = {"x-goog-api-key": "sk-caller"}


def config(fake: FakeUpstream) -> dict[str, Any]:
    sections = base_config(fake.base_url)
    for n in range(GROUPS):
        deployment = {"provider": "alpha", "model": f"model-{n:02}"}
        sections["models"][f"group-{n:02}"] = {"deployments": [deployment]}
    return sections


@pytest.fixture
async def http(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[httpx.AsyncClient]:
    edge = await start_edge(await start_router(config(fake)))
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        yield client


async def every_model(http: httpx.AsyncClient) -> list[str]:
    """The whole list in one page (the most a page holds)."""
    answer = await http.get("/v1beta/models", params={"pageSize": 1000}, headers=KEY)
    assert answer.status_code == 200 and "nextPageToken" not in answer.json()
    return [model["name"] for model in answer.json()["models"]]


async def test_the_sdks_pager_reads_every_page(http: httpx.AsyncClient) -> None:
    everything = await every_model(http)
    assert len(everything) > 50 and "models/group-59" in everything
    options = types.HttpOptions(base_url=str(http.base_url), httpx_async_client=http)
    client = genai.Client(api_key="sk-caller", http_options=options)
    pager = await client.aio.models.list()  # Gemini's default page: 50
    assert len(pager.page) == 50
    assert [model.name async for model in pager] == everything
    small = await client.aio.models.list(config={"page_size": 7})
    assert len(small.page) == 7
    assert [model.name async for model in small] == everything
    client.close()


async def test_pages_by_raw_http_follow_next_page_token(http: httpx.AsyncClient) -> None:
    everything = await every_model(http)
    names: list[str] = []
    params: dict[str, Any] = {"pageSize": 20}
    pages = 0
    while True:
        answer = (await http.get("/v1beta/models", params=params, headers=KEY)).json()
        pages += 1
        names += [model["name"] for model in answer["models"]]
        if "nextPageToken" not in answer:
            break
        assert answer["nextPageToken"] and len(answer["models"]) == 20
        params["pageToken"] = answer["nextPageToken"]
    assert names == everything and pages == -(-len(everything) // 20)
    zero = (await http.get("/v1beta/models", params={"pageSize": 0}, headers=KEY)).json()
    assert len(zero["models"]) == 50 and zero["nextPageToken"]  # 0: the default


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"pageToken": "not-a-token"}, "pageToken"),
        ({"pageToken": "eyJvZmZzZXQiOiAtMX0"}, "pageToken"),  # {"offset": -1}
        ({"pageSize": "-1"}, "pageSize"),
        ({"pageSize": "ten"}, "pageSize"),
    ],
)
async def test_a_bad_page_parameter_is_a_gemini_400_naming_it(
    http: httpx.AsyncClient, params: dict[str, str], named: str
) -> None:
    answer = await http.get("/v1beta/models", params=params, headers=KEY)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "status"}
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"].startswith(f"{named}:")


async def test_a_bad_page_parameter_is_not_counted_in_the_callers_rpm(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A page parameter that is wrong is refused before the router is asked for the list: as
    no other invalid request does, it takes no place in the client's rpm window."""
    limited = "sk-gemini-pages-rpm"
    sections = guarded_config(fake.base_url, client("pager", limited, rpm=1))
    edge = await start_edge(await start_router(sections, clock=ManualClock()))
    headers = {"x-goog-api-key": limited}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        for params in ({"pageSize": "-1"}, {"pageToken": "not-a-token"}):
            refused = await http.get("/v1beta/models", params=params, headers=headers)
            assert refused.status_code == 400
        answer = await http.get("/v1beta/models", params={"pageSize": 1}, headers=headers)
        assert answer.status_code == 200 and len(answer.json()["models"]) == 1
        limit = await http.get("/v1beta/models", headers=headers)  # the rpm counts calls
        assert limit.status_code == 429
