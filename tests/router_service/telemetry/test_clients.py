"""What each client (app) used: requests and tokens by `switchboard.client` in the metrics, its
budgets' standing (used and limit per period), the client's name on the request span. Names come
from the config (auth.clients[].name), so the label is bounded; keys never appear."""

from __future__ import annotations

import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config
from tests.router_service.engine.test_cost import priced_config
from tests.router_service.telemetry.spans import Trace, attrs, ended, requests
from tests.router_service.telemetry.test_metrics import samples, value

SERVER_CHAT = "switchboard.v1.RouterService/Chat"


async def test_requests_and_tokens_are_counted_per_client(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    config = guarded_config(
        fake.base_url, client("chat-app", "sk-chat-app"), client("batch-job", "sk-batch-job")
    )
    router = await start_router(config)
    chat_app, batch_job = bearer("sk-chat-app"), bearer("sk-batch-job")
    answers = [
        await router.stub.Chat(chat(text=text), metadata=chat_app) for text in ("one two", "three")
    ]
    stream = chat_stream(text="four five six")
    stream.params.stream_options.include_usage = True
    events = [e async for e in router.stub.ChatStream(stream, metadata=batch_job)]
    usage = next(e.summary.usage for e in events if e.WhichOneof("event") == "summary")

    found = samples(captured.prometheus_text())
    requests = "switchboard_requests_total"
    assert value(found, requests, switchboard_client="chat-app", switchboard_outcome="OK") == 2
    assert value(found, requests, switchboard_client="batch-job", switchboard_stream="true") == 1
    tokens = "switchboard_client_tokens_total"
    by_batch = {"switchboard_client": "batch-job", "switchboard_model_group": "chain"}
    assert value(found, tokens, gen_ai_token_type="input", **by_batch) == usage.prompt_tokens
    assert value(found, tokens, gen_ai_token_type="output", **by_batch) == usage.completion_tokens
    app_input = value(found, tokens, switchboard_client="chat-app", gen_ai_token_type="input")
    assert app_input == sum(a.completion.usage.prompt_tokens for a in answers) > 0
    assert not any("sk-" in label for (_, labels) in found for _, label in labels)


async def test_open_access_is_counted_as_anonymous_and_named_on_the_span(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    await router.stub.Chat(chat())
    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", switchboard_client="anonymous") == 1
    assert value(found, "switchboard_client_tokens_total", switchboard_client="anonymous") > 0
    trace = await ended(captured, SERVER_CHAT)
    assert attrs(trace.one(SERVER_CHAT))["switchboard.client"] == "anonymous"


async def test_the_request_span_names_the_client(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(guarded_config(fake.base_url, client("chat-app", "sk-chat-app")))
    await router.stub.Chat(chat(), metadata=bearer("sk-chat-app"))
    trace = await ended(captured, SERVER_CHAT)
    assert attrs(trace.one(SERVER_CHAT))["switchboard.client"] == "chat-app"


async def test_the_metrics_show_what_each_budget_has_left(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    config = guarded_config(
        fake.base_url,
        client("alice", "sk-alice", tokens_per_day=1000, tokens_per_month=50_000),
        client("bob", "sk-bob"),
    )
    router = await start_router(config, clock=ManualClock())
    answer = await router.stub.Chat(chat(text="one two three"), metadata=bearer("sk-alice"))
    await router.runtime.gauges.poll()
    found = samples(captured.prometheus_text())
    day = {"switchboard_client": "alice", "switchboard_budget_period": "day"}
    month = {**day, "switchboard_budget_period": "month"}
    used = answer.completion.usage.total_tokens
    assert value(found, "switchboard_client_budget_used", **day) == used
    assert value(found, "switchboard_client_budget_used", **month) == used
    assert value(found, "switchboard_client_budget_limit", **day) == 1000
    assert value(found, "switchboard_client_budget_limit", **month) == 50_000
    assert value(found, "switchboard_client_budget_limit", switchboard_client="bob") == 0


async def test_what_each_client_spent_is_counted_and_on_the_span(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    config = priced_config(fake.base_url, auth={"clients": [client("chat-app", "sk-chat-app")]})
    config["models"]["unpriced"] = {"deployments": [{"provider": "alpha", "model": "model-c"}]}
    router = await start_router(config)
    app = bearer("sk-chat-app")
    answers = [await router.stub.Chat(chat(text=t), metadata=app) for t in ("one", "two three")]
    await router.stub.Chat(chat(model="unpriced"), metadata=app)
    found = samples(captured.prometheus_text())
    spend = "switchboard_client_spend_total"
    by_app = {"switchboard_client": "chat-app", "switchboard_model_group": "chain"}
    assert value(found, spend, **by_app) == pytest.approx(sum(a.route.cost_usd for a in answers))
    assert not any(
        name == spend and ("switchboard_model_group", "unpriced") in labels
        for name, labels in found
    )

    async def all_three() -> bool:
        trace = Trace(captured.spans())
        return len(requests(trace, "chain")) == 2 and len(requests(trace, "unpriced")) == 1

    await eventually(all_three, what="the three requests' spans ended")
    trace = Trace(captured.spans())
    costs = [attrs(span).get("switchboard.cost.usd") for span in requests(trace, "chain")]
    assert sorted(costs) == sorted(a.route.cost_usd for a in answers)  # type: ignore[type-var]
    assert "switchboard.cost.usd" not in attrs(requests(trace, "unpriced")[0])


async def test_the_metrics_show_what_each_money_budget_has_left(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    alice = client("alice", "sk-alice", tokens_per_month=50_000, usd_per_day=1.5)
    config = priced_config(fake.base_url, auth={"clients": [alice, client("bob", "sk-bob")]})
    router = await start_router(config, clock=ManualClock())
    answer = await router.stub.Chat(chat(text="one two three"), metadata=bearer("sk-alice"))
    await router.runtime.gauges.poll()
    found = samples(captured.prometheus_text())
    day = {"switchboard_client": "alice", "switchboard_budget_period": "day"}
    month = {**day, "switchboard_budget_period": "month"}
    used, limit = "switchboard_client_budget_usd_used", "switchboard_client_budget_usd_limit"
    assert value(found, used, **day) == pytest.approx(answer.route.cost_usd)
    assert value(found, limit, **day) == 1.5
    assert value(found, limit, **month) == 0  # a token budget alone that month: no money one
    assert value(found, "switchboard_client_budget_limit", **month) == 50_000
    assert value(found, "switchboard_client_budget_limit", **day) == 0  # and no token one here
    assert value(found, limit, switchboard_client="bob") == 0
