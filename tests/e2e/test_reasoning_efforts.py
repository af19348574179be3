"""Each OpenAI-format deployment gets an effort its model takes (_reasoning_efforts.py): a
group mixing gpt-5 and gpt-5.1, or o3, takes one effort at each, first choice or failover,
called or streamed; a model the table does not know gets the effort as asked."""

from __future__ import annotations

from typing import Any

import ollama
import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge

HELLO: Any = [{"role": "user", "content": "hello"}]


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = base_config(fake.base_url)

    def one(model: str) -> dict[str, Any]:
        return {"deployments": [{"provider": "alpha", "model": model}]}

    out["providers"]["az"] = {"kind": "azure", "base_url": fake.url, "keys": ["az-key"]}
    out["models"] |= {
        "az-o3-mini": {"deployments": [{"provider": "az", "model": "o3-mini"}]},
        "az-named-otherwise": {"deployments": [{"provider": "az", "model": "reasoner-prod"}]},
        "az-based": {
            "deployments": [{"provider": "az", "model": "prod-reasoner", "base_model": "o3-mini"}]
        },
        "az-based-4o": {
            "deployments": [{"provider": "az", "model": "my-4o", "base_model": "gpt-4o"}]
        },
        "az-based-pro": {
            "deployments": [{"provider": "az", "model": "prod-pro", "base_model": "o3-pro"}]
        },
        "o3": one("o3-2025-04-16"),
        "pro": one("gpt-5-pro"),
        "router-o4": one("openai/o4-mini"),
        "tuned": one("ft:gpt-5-mini-2025-08-07:acme::x1"),
        "local": one("qwen3-32b"),
        "chat-five-one": one("gpt-5.1-chat-latest"),
        "five-then-five-one": {
            "deployments": [
                {"provider": "alpha", "model": "gpt-5"},
                {"provider": "beta", "model": "gpt-5.1"},
            ]
        },
    }
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def sent_effort(fake: FakeUpstream, model: str) -> Any:
    [call] = fake.state.calls(model=model)
    if call.path.endswith("/responses"):  # a Responses-only model (gpt-5-pro): its knob
        return call.body["reasoning"]["effort"]
    return call.body.get("reasoning_effort")


@pytest.mark.parametrize(
    ("model", "upstream", "effort", "sent"),
    [
        ("o3", "o3-2025-04-16", "none", "low"),
        ("o3", "o3-2025-04-16", "minimal", "low"),
        ("pro", "gpt-5-pro", "low", "high"),
        ("router-o4", "openai/o4-mini", "xhigh", "high"),
        ("tuned", "ft:gpt-5-mini-2025-08-07:acme::x1", "none", "minimal"),
        ("chat-five-one", "gpt-5.1-chat-latest", "high", "medium"),  # medium only
        ("local", "qwen3-32b", "none", "none"),  # a name the table does not know: as asked
    ],
)
async def test_an_effort_the_model_refuses_becomes_the_nearest_it_takes(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, upstream: str, effort: Any, sent: str
) -> None:
    answer = await sdk.chat.completions.create(model=model, messages=HELLO, reasoning_effort=effort)

    assert answer.choices[0].message.content == "Echo: hello"
    assert sent_effort(fake, upstream) == sent


@pytest.mark.parametrize(("effort", "at_five", "at_five_one"), [("minimal", "minimal", "low")])
async def test_failover_from_gpt_5_to_gpt_5_1_fits_the_effort_at_each(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, effort: Any, at_five: str, at_five_one: str
) -> None:
    fake.state.set_scenario(Scenario(status=503), model="gpt-5")

    answer = await sdk.chat.completions.create(
        model="five-then-five-one", messages=HELLO, reasoning_effort=effort
    )

    assert answer.choices[0].message.content == "Echo: hello"
    assert sent_effort(fake, "gpt-5") == at_five
    assert sent_effort(fake, "gpt-5.1") == at_five_one


async def test_a_streamed_call_gets_the_fitted_effort_too(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """OpenRouter's `enabled: false` is `none`: gpt-5 takes `minimal` for it, the least it has."""
    stream = await sdk.chat.completions.create(
        model="five-then-five-one",
        messages=HELLO,
        stream=True,
        extra_body={"reasoning": {"enabled": False}},
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert text == "Echo: hello"
    assert sent_effort(fake, "gpt-5") == "minimal"


async def test_ollamas_think_false_at_o3_is_its_least_effort(
    router: RouterHandle, start_edge: StartEdge, fake: FakeUpstream
) -> None:
    """The Ollama entrance's `think: false` is `none`, which o3 refuses: it gets `low`."""
    edge = await start_edge(router)
    client = ollama.AsyncClient(host=edge.base_url, headers={"Authorization": "Bearer sk-caller"})
    try:
        answer = await client.chat(model="o3", messages=HELLO, think=False)
    finally:
        await client._client.aclose()

    assert answer.message.content == "Echo: hello"
    assert sent_effort(fake, "o3-2025-04-16") == "low"


@pytest.mark.parametrize(("model", "sent"), [("az-o3-mini", "low"), ("az-named-otherwise", "none")])
async def test_an_azure_deployment_is_fitted_by_its_deployment_name(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, sent: str
) -> None:
    """Azure names the deployment, not the model: one named after its model (o3-mini) gets an
    effort o3-mini takes; one named otherwise gets the effort as asked."""
    await sdk.chat.completions.create(model=model, messages=HELLO, reasoning_effort="none")

    record = fake.state.last()
    assert record is not None and record.path.startswith("/openai/deployments/")
    assert record.body["reasoning_effort"] == sent


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "sent"), [("az-based", "low"), ("az-based-4o", None)])
async def test_an_azure_deployment_is_fitted_by_its_base_model(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, sent: str | None, stream: bool
) -> None:
    """`base_model` says what an Azure deployment named otherwise serves: prod-reasoner (o3-mini)
    gets an effort o3-mini takes, my-4o (gpt-4o) no `reasoning_effort` at all (gpt-4o refuses
    it), called or streamed."""
    if stream:
        chunks = await sdk.chat.completions.create(
            model=model, messages=HELLO, reasoning_effort="none", stream=True
        )
        assert "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    else:
        await sdk.chat.completions.create(model=model, messages=HELLO, reasoning_effort="none")

    record = fake.state.last()
    assert record is not None and record.path.startswith("/openai/deployments/")
    assert record.body.get("reasoning_effort") == sent


async def test_a_deployment_whose_base_model_is_responses_only_is_called_on_the_responses_api(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """`base_model: o3-pro` (served only on the Responses API) tells it as the name would."""
    answer = await sdk.chat.completions.create(model="az-based-pro", messages=HELLO)

    assert answer.choices[0].message.content == "Echo: hello"
    record = fake.state.last()
    assert record is not None and record.path.endswith("/responses")
