"""Anthropic's SDK against `/v1/messages` when things go wrong, and `count_tokens`: client keys
in `x-api-key` or `Authorization`, Anthropic's error types and statuses, `error` events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import httpx
import pytest

from clients import estimate_prompt_tokens
from clients.codec.anthropic import messages_request_from_anthropic
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.router_service.auth.helpers import client as client_config
from tests.router_service.auth.helpers import guarded_config

KEY = "sk-ant-caller-0123456789"
LIMITED_KEY = "sk-ant-limited-0123456789"
EMBED_KEY = "sk-ant-embedder-0123456789"  # may use the `embedder` group alone
HELLO: list[Any] = [{"role": "user", "content": "hello"}]
MAX_BODY = 8192

Open = Callable[..., anthropic.AsyncAnthropic]


@pytest.fixture
async def open_claude(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[Open]:
    """SDKs (with these keys) on an edge over a router that knows two client keys, one of
    them allowed a single request a minute."""
    router = await start_router(
        guarded_config(
            fake.base_url,
            client_config("caller", KEY),
            client_config("one", LIMITED_KEY, rpm=1),
            client_config("embed", EMBED_KEY, models=["embedder"]),
        )
    )
    edge = await start_edge(router, max_body_bytes=MAX_BODY)
    opened: list[anthropic.AsyncAnthropic] = []

    def open_(**keys: Any) -> anthropic.AsyncAnthropic:
        sdk = anthropic.AsyncAnthropic(base_url=edge.base_url, max_retries=0, timeout=10, **keys)
        opened.append(sdk)
        return sdk

    yield open_
    for sdk in opened:
        await sdk.close()


async def test_keys_come_in_x_api_key_or_as_a_bearer_token(open_claude: Open) -> None:
    for sdk in (open_claude(api_key=KEY), open_claude(auth_token=KEY)):
        message = await sdk.messages.create(model="chain", max_tokens=16, messages=HELLO)
        assert message.content[0].type == "text"
    with pytest.raises(anthropic.AuthenticationError) as refused:
        await open_claude(api_key="sk-unknown").messages.create(
            model="chain", max_tokens=16, messages=HELLO
        )
    assert refused.value.status_code == 401
    body: Any = refused.value.body
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == "authentication_error"
    assert "sk-unknown" not in str(refused.value.body)
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        await open_claude(api_key=EMBED_KEY).messages.create(
            model="chain", max_tokens=16, messages=HELLO
        )
    assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]


async def test_a_request_the_api_cannot_say_is_an_invalid_request_error(open_claude: Open) -> None:
    sdk = open_claude(api_key=KEY)
    # Runs at Anthropic, and is not passed on (web search and web fetch are).
    code: Any = {"type": "code_execution_20250825", "name": "code_execution"}
    with pytest.raises(anthropic.BadRequestError) as refused:
        await sdk.messages.create(model="chain", max_tokens=16, messages=HELLO, tools=[code])
    error = refused.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert "tools[0].type" in error["message"] and "server tools" in error["message"]
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await sdk.messages.create(model="no-such-model", max_tokens=16, messages=HELLO)
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


async def test_the_callers_own_rate_limit_is_a_429_with_retry_after(open_claude: Open) -> None:
    sdk = open_claude(api_key=LIMITED_KEY)
    await sdk.messages.create(model="chain", max_tokens=16, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as refused:
        await sdk.messages.create(model="chain", max_tokens=16, messages=HELLO)
    assert refused.value.status_code == 429
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    headers = refused.value.response.headers
    assert int(headers["retry-after"]) > 0
    assert headers["x-ratelimit-limit-requests"] == "1"


async def test_a_router_whose_keys_all_cool_down_is_overloaded(
    open_claude: Open, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="30"))
    sdk = open_claude(api_key=KEY)
    with pytest.raises(anthropic.RateLimitError) as limited:  # every upstream said 429
        await sdk.messages.create(model="chain", max_tokens=16, messages=HELLO)
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with pytest.raises(anthropic.APIStatusError) as refused:  # now every key is cooling down
        await sdk.messages.create(model="chain", max_tokens=16, messages=HELLO)
    assert refused.value.status_code == 529
    assert refused.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert int(refused.value.response.headers["retry-after"]) > 0


async def test_a_stream_failing_after_its_start_ends_with_an_error_event(
    open_claude: Open, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(truncate_after_chunks=3))
    sdk = open_claude(api_key=KEY)
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as failed:
        async with sdk.messages.stream(
            model="chain", max_tokens=16, messages=[{"role": "user", "content": "a b c d e f"}]
        ) as stream:
            async for event in stream:
                seen.append(event.type)
    assert seen[0] == "message_start" and "text" in seen, seen
    assert "message_stop" not in seen
    assert failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]


async def test_count_tokens_is_the_routers_estimate(open_claude: Open) -> None:
    request: dict[str, Any] = {
        "model": "chain",
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "How many tokens is this sentence?"}],
    }
    counted = await open_claude(api_key=KEY).messages.count_tokens(**request)
    params, _ = messages_request_from_anthropic({"max_tokens": 1, **request})
    assert counted.input_tokens == estimate_prompt_tokens(params) > 0
    with pytest.raises(anthropic.NotFoundError):
        await open_claude(api_key=KEY).messages.count_tokens(**{**request, "model": "nope"})
    with pytest.raises(anthropic.AuthenticationError):
        await open_claude(api_key="sk-unknown").messages.count_tokens(**request)


async def test_errors_raised_before_the_route_are_anthropics_with_its_request_id(
    open_claude: Open,
) -> None:
    sdk = open_claude(api_key=KEY)
    answered = await sdk.messages.with_raw_response.create(
        model="chain", max_tokens=16, messages=HELLO
    )
    assert answered.headers["request-id"] == answered.headers["x-request-id"]
    assert (await answered.parse())._request_id == answered.headers["request-id"]
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await sdk.post("/v1/messages/nope", cast_to=object, body={})
    with pytest.raises(anthropic.APIStatusError) as wrong_method:
        await sdk.get("/v1/messages", cast_to=object)
    too_large: Any = [{"role": "user", "content": "x" * MAX_BODY}]
    with pytest.raises(anthropic.APIStatusError) as over:
        await sdk.messages.create(model="chain", max_tokens=16, messages=too_large)
    refused = {
        404: unknown.value,
        405: wrong_method.value,
        413: over.value,
    }
    for status, error in refused.items():
        assert error.status_code == status and error.request_id
        body: Any = error.body
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
    assert over.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    async with httpx.AsyncClient(base_url=str(sdk.base_url)) as http:
        malformed = await http.post("/v1/messages", content=b"{", headers={"x-api-key": KEY})
    assert malformed.status_code == 400 and malformed.headers["request-id"]
    assert malformed.json()["error"]["type"] == "invalid_request_error"


async def test_a_missing_key_is_told_to_come_in_x_api_key(open_claude: Open) -> None:
    """Anthropic's callers send their key in `x-api-key`: the refusal of none says so, on
    every path of the API, plain and streamed, in Anthropic's shape."""
    sdk = open_claude(api_key=KEY)
    version = {"anthropic-version": "2023-06-01"}
    ask = {"model": "chain", "max_tokens": 16, "messages": HELLO}
    async with httpx.AsyncClient(base_url=str(sdk.base_url), headers=version) as http:
        refused = [
            await http.post("/v1/messages", json=ask),
            await http.post("/v1/messages", json={**ask, "stream": True}),
            await http.post("/v1/messages/count_tokens", json=ask),
            await http.get("/v1/models"),
        ]
    for answer in refused:
        assert answer.status_code == 401, answer.text
        error = answer.json()["error"]
        assert error["type"] == "authentication_error"
        assert "x-api-key" in error["message"] and "Bearer" not in error["message"], error


async def test_an_upstream_keys_failure_mid_stream_is_overloaded_not_the_callers_auth(
    open_claude: Open, fake: FakeUpstream
) -> None:
    """The upstream refusing its own key mid-stream (a wrapped 401) is the router's failure to
    serve, as before the stream's start (529 overloaded_error): an `authentication_error`
    event told the caller its key was bad."""
    refused = {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }
    fake.state.set_scenario(Scenario(wrapped_error_at_chunk=3, wrapped_error=refused))
    sdk = open_claude(api_key=KEY)
    with pytest.raises(anthropic.APIStatusError) as failed:
        async with sdk.messages.stream(
            model="chain", max_tokens=16, messages=[{"role": "user", "content": "a b c d e f"}]
        ) as stream:
            async for _ in stream:
                pass
    assert failed.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
