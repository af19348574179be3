"""`GET /v1/models` as Anthropic's callers read it: its SDK's `client.models.list()` and
`retrieve()`, and Claude Code's gateway model discovery (`GET /v1/models?limit=1000` with
`anthropic-version`), which reads Anthropic's shape and no other."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.router_service.auth.helpers import client as client_config
from tests.router_service.auth.helpers import guarded_config

LISTED = ["chain", "embedder", "alpha/model-a", "beta/model-b", "alpha/embed-a"]


async def test_the_sdk_lists_and_pages_the_models(claude: anthropic.AsyncAnthropic) -> None:
    listed = [model async for model in claude.models.list(limit=2)]  # three pages, followed
    assert [model.id for model in listed] == LISTED
    first = listed[0]
    assert (first.type, first.display_name) == ("model", "chain")
    assert first.created_at.year == 1970  # a group has no date: the epoch, as a date
    page = await claude.models.list(limit=2, after_id="embedder")
    assert [model.id for model in page.data] == ["alpha/model-a", "beta/model-b"]
    assert (page.has_more, page.first_id, page.last_id) == (True, "alpha/model-a", "beta/model-b")
    before = await claude.models.list(before_id="alpha/model-a")
    assert [model.id for model in before.data] == ["chain", "embedder"]
    assert before.has_more is False
    model = await claude.models.retrieve("beta/model-b")
    assert (model.id, model.type, model.display_name) == ("beta/model-b", "model", "beta/model-b")
    assert model._request_id  # Anthropic's `request-id`, as on `/v1/messages`


async def test_refusals_are_anthropics(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await claude.models.retrieve("no-such-model")
    body = unknown.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    assert "no-such-model" in body["error"]["message"]
    assert unknown.value.request_id  # what a user quotes
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.models.list(limit=1001)
    assert "limit" in refused.value.message
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.models.list(after_id="no-such-model")
    assert "after_id" in refused.value.message


async def test_claude_codes_discovery_and_openais_list_side_by_side(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Claude Code sends its key in `x-api-key`, as to `/v1/messages`."""
    key = "sk-ant-caller-0123456789"
    router = await start_router(guarded_config(fake.base_url, client_config("caller", key)))
    edge = await start_edge(router)
    claude_code = {"anthropic-version": "2023-06-01", "x-api-key": key}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=3) as http:
        discovered = await http.get("/v1/models", params={"limit": 1000}, headers=claude_code)
        wrong = {**claude_code, "x-api-key": "sk-ant-wrong-0123456789"}
        refused = await http.get("/v1/models", params={"limit": 1000}, headers=wrong)
        openai_list = await http.get("/v1/models", headers={"authorization": f"Bearer {key}"})
    assert discovered.status_code == 200
    assert [model["id"] for model in discovered.json()["data"]] == LISTED
    assert discovered.json()["has_more"] is False
    assert "anthropic-version" in discovered.headers["vary"]
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"
    assert openai_list.json()["object"] == "list"
    assert openai_list.json()["data"][0]["object"] == "model"
