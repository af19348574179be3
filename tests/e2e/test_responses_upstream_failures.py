"""A Responses API deployment fails as a chat one does: its 5xx and 429 fail over to the group's
next deployment; a `response.failed` event once content was relayed is one typed error event
to the caller (no silent failover)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._responses_api import ERROR_EVENT
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge, error_of, events

HELLO: Any = [{"role": "user", "content": "hello"}]


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = base_config(fake.base_url)
    out["models"]["pros"] = {
        "deployments": [
            {"provider": "alpha", "model": "gpt-5-pro"},
            {"provider": "beta", "model": "o3-pro"},
        ]
    }
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.mark.parametrize("status", [500, 429])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_failing_responses_deployment_fails_over(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, status: int, stream: bool
) -> None:
    fake.state.set_scenario(Scenario(status=status), model="gpt-5-pro")
    if stream:
        chunks = await sdk.chat.completions.create(model="pros", messages=HELLO, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    else:
        answer = await sdk.chat.completions.create(model="pros", messages=HELLO)
        text = answer.choices[0].message.content or ""

    assert text == "Echo: hello"
    # A 429 is the key's: alpha's other key is tried before beta (as for chat calls).
    *failed, served = fake.state.calls()
    assert failed and all((c.model, c.status) == ("gpt-5-pro", status) for c in failed)
    assert (served.model, served.status) == ("o3-pro", 200)
    assert all(c.path == "/v1/responses" for c in fake.state.calls())


async def test_response_failed_mid_stream_is_a_typed_error_event(
    router: RouterHandle, start_edge: StartEdge, fake: FakeUpstream
) -> None:
    # Five events (created, in_progress, item and part added, the first delta), then failed.
    fake.state.set_scenario(Scenario(wrapped_error_at_chunk=6))
    edge = await start_edge(router)
    body = {"model": "pros", "messages": HELLO, "stream": True}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        response = await http.post("/v1/chat/completions", json=body)

    *data, error, done = events(response.content)
    assert response.status_code == 200 and done == b"data: [DONE]"
    assert error_of(error)["type"] == "upstream_error"
    assert b"Echo: " in b"".join(data)  # the content that had arrived was relayed
    assert fake.state.count() == 1  # no failover once content was relayed


async def test_response_failed_in_a_unary_answer_fails_over(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(wrapped_error={}), model="gpt-5-pro")
    answer = await sdk.chat.completions.create(model="pros", messages=HELLO)

    assert answer.choices[0].message.content == "Echo: hello"
    assert [c.model for c in fake.state.calls()] == ["gpt-5-pro", "o3-pro"]


RATE_LIMIT = {
    "type": "tokens",
    "code": "rate_limit_exceeded",
    "message": "Rate limit reached for gpt-5-pro on tokens per min (TPM). Try again in 6s.",
    "param": None,
    "headers": {"x-ratelimit-limit-tokens": "30000", "x-ratelimit-reset-tokens": "6s"},
}


async def test_a_stream_error_event_is_classified_by_its_nested_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # The live API's `error` event nests its code and message under `error`: read there, a
    # rate limit is the keys' 429 (each key of alpha tried, then cooled), not a server error.
    scenario = Scenario(kind=ERROR_EVENT, wrapped_error=RATE_LIMIT, wrapped_error_at_chunk=1)
    fake.state.set_scenario(scenario)
    with pytest.raises(openai.RateLimitError) as raised:
        await sdk.chat.completions.create(model="pros", messages=HELLO, stream=True)

    assert "Rate limit reached" in str(raised.value)
    assert raised.value.response.headers.get("retry-after") == "6"  # the event's own reset
    assert "30000" not in raised.value.response.text  # its headers are not the caller's
    assert [c.model for c in fake.state.calls()].count("gpt-5-pro") == 2  # both alpha keys


FLAGGED = {
    "code": "invalid_prompt",
    "message": "Invalid prompt: your prompt was flagged as potentially violating our usage policy.",
}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_response_failed_for_the_callers_prompt_is_its_400(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    # `invalid_prompt` (and the image codes) are the caller's request, as the chat API's 400:
    # said to the caller, not failed over as a server error every deployment is tried with.
    fake.state.set_scenario(Scenario(wrapped_error=FLAGGED, wrapped_error_at_chunk=1))
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="pros", messages=HELLO, stream=stream)

    assert "flagged" in str(refused.value)
    assert [c.model for c in fake.state.calls()] == ["gpt-5-pro"]


async def test_a_hidden_reasoning_item_s_opening_does_not_commit_the_stream(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """Hidden reasoning (`reasoning.exclude`) with its items kept: a reasoning item's opening
    (its id) shows the caller nothing yet, so a failure after it still fails over."""
    # Three events (created, in_progress, the reasoning item added), then failed.
    failing = Scenario(reasoning="Thinking hard.", wrapped_error_at_chunk=4)
    fake.state.set_scenario(failing, model="gpt-5-pro")
    hidden = {"include": ["reasoning.encrypted_content"], "reasoning": {"exclude": True}}
    chunks = await sdk.chat.completions.create(
        model="pros", messages=HELLO, stream=True, reasoning_effort="low", extra_body=hidden
    )
    text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])

    assert text == "Echo: hello"
    assert [(c.model, c.status) for c in fake.state.calls()] == [
        ("gpt-5-pro", 200),
        ("o3-pro", 200),
    ]


@pytest.mark.parametrize(
    ("stream", "kind"),
    [(False, None), (True, None), (True, ERROR_EVENT)],
    ids=["unary", "response.failed", "error-event"],
)
async def test_a_failed_response_cools_no_deployment_for_everyone(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool, kind: str | None
) -> None:
    """A Response whose model failed to generate it (`status: failed`, `server_error`) is one
    answer's failure, as chat's `finish_reason: error` is: this request goes on to the group's
    next, another conversation is the deployment's again (no 15 s cooldown for everyone). The
    live API ends a failed stream with an `error` event first, then `response.failed`: the
    router, which stops at the first, reads it as the same failed Response."""
    failed = Scenario(kind=kind, wrapped_error={}, wrapped_error_at_chunk=1)
    fake.state.set_scenario(failed, model="gpt-5-pro")
    chunks: Any = await sdk.chat.completions.create(model="pros", messages=HELLO, stream=stream)
    _ = [c async for c in chunks] if stream else chunks
    fake.state.clear_scenarios()

    other: Any = [{"role": "user", "content": "another conversation"}]
    raw = await sdk.chat.completions.with_raw_response.create(model="pros", messages=other)

    assert [c.model for c in fake.state.calls()] == ["gpt-5-pro", "o3-pro", "gpt-5-pro"]
    assert raw.headers["x-switchboard-deployment"] == "alpha/gpt-5-pro"
