"""The retries and fallbacks series exist at 0 for every operation a group's deployments serve
(media too, not only chat and embeddings), as a real scrape reads them: the first fallback of an
image or speech group is an increase from 0, not a series born at 1."""

from __future__ import annotations

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clients.switchboard.v1 import media_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry import PrometheusListener
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def at(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


async def scrape(http: httpx.AsyncClient, url: str) -> Samples:
    text = (await http.get(url)).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def speech(model: str) -> pb.MediaRequest:
    params = media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_AUDIO_SPEECH,
        model=model,
        params_json='{"input": "hello", "voice": "alloy"}',
    )
    return pb.MediaRequest(params=params)


async def test_a_speech_groups_first_fallback_counts_from_zero(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    config = base_config(fake.base_url)
    config["providers"]["claude"] = {
        "kind": "anthropic",
        "base_url": fake.base_url,
        "keys": ["k1", "k2"],
    }
    config["models"]["mixed"] = {
        "deployments": [
            {"provider": "alpha", "model": "model-a"},
            {"provider": "claude", "model": "claude-x"},  # no speech, no images
        ]
    }
    router = await start_router(config)
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")
    with PrometheusListener("127.0.0.1", 0) as listener:
        url = f"http://127.0.0.1:{listener.port}/metrics"
        async with httpx.AsyncClient() as http:
            before = await scrape(http, url)
            answer = await router.stub.Media(speech("chain"))
            after = await scrape(http, url)
    assert answer.route.deployment == "beta/model-b"

    fallbacks, retries = "switchboard_fallbacks_total", "switchboard_retries_total"
    chain = {"gen_ai_operation_name": "audio.speech", "switchboard_model_group": "chain"}
    alpha = {**chain, "switchboard_deployment": "alpha/model-a"}
    assert at(before, fallbacks, **alpha) == 0
    assert at(after, fallbacks, **alpha) == 1
    assert at(before, retries, **alpha) == 0  # two keys
    images = {**alpha, "gen_ai_operation_name": "images.generations"}
    assert at(before, fallbacks, **images) == 0
    # A Realtime session fails over too; alpha is not marked `realtime: true`: never retried.
    realtime = {**alpha, "gen_ai_operation_name": "realtime"}
    assert (at(before, fallbacks, **realtime), at(before, retries, **realtime)) == (0, None)

    mixed = {"switchboard_model_group": "mixed", "switchboard_deployment": "alpha/model-a"}
    assert at(before, fallbacks, **mixed, gen_ai_operation_name="chat") == 0
    claude = {**mixed, "switchboard_deployment": "claude/claude-x"}
    assert at(before, fallbacks, **claude, gen_ai_operation_name="chat") == 0
    # Claude has no speech: passed over (a fallback, below), never retried.
    assert at(before, fallbacks, **claude, gen_ai_operation_name="audio.speech") == 0
    assert at(before, retries, **claude, gen_ai_operation_name="audio.speech") is None


async def test_a_deployment_passed_over_counts_its_fallback_from_zero(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """A deployment whose kind has no such endpoint is passed over: the request moves on from it
    to the next candidate, a fallback as any other (its route names it), so its series exists at
    0 too; so does the fallback of the only deployment that speaks, on to one passed over."""
    config = base_config(fake.base_url)
    config["providers"]["claude"] = {
        "kind": "anthropic",
        "base_url": fake.base_url,
        "keys": ["k1", "k2"],
    }
    claude, alpha = (
        {"provider": "claude", "model": "claude-x"},
        {"provider": "alpha", "model": "model-a"},
    )
    config["models"]["claude-first"] = {"deployments": [claude, alpha]}
    config["models"]["claude-last"] = {"deployments": [alpha, claude]}
    router = await start_router(config)
    with PrometheusListener("127.0.0.1", 0) as listener:
        url = f"http://127.0.0.1:{listener.port}/metrics"
        async with httpx.AsyncClient() as http:
            before = await scrape(http, url)
            answer = await router.stub.Media(speech("claude-first"))
            fake.state.set_scenario(Scenario.server_error(502), model="model-a")
            with pytest.raises(grpc.aio.AioRpcError):
                await router.stub.Media(speech("claude-last"))
            after = await scrape(http, url)
    assert [a.deployment for a in answer.route.attempts] == ["claude/claude-x", "alpha/model-a"]

    fallbacks, spoken = "switchboard_fallbacks_total", {"gen_ai_operation_name": "audio.speech"}
    first = {**spoken, "switchboard_model_group": "claude-first"}
    passed = {**first, "switchboard_deployment": "claude/claude-x"}
    assert (at(before, fallbacks, **passed), at(after, fallbacks, **passed)) == (0, 1)
    last = {**spoken, "switchboard_model_group": "claude-last"}
    failed = {**last, "switchboard_deployment": "alpha/model-a"}
    assert (at(before, fallbacks, **failed), at(after, fallbacks, **failed)) == (0, 1)
