"""A background response's call in the router's metrics, scraped from its Prometheus listener:
a streamed one (OpenAI's `background` with `stream`) counts its tokens and its outcome as the
unary one does — its client's tokens for showback, the GenAI token histogram, a failure mid-way
not an OK."""

from __future__ import annotations

import httpx
import orjson

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry import PrometheusListener
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.responses.test_background_rpcs import A, loaded, start_request
from tests.router_service.telemetry.test_metrics import Samples, samples, value


async def _ran(router: RouterHandle, response_id: str, *, stream: bool) -> dict[str, object]:
    """Start a background response of client `a`, let it finish; the Response it stored."""
    started = start_request(response_id)
    started.stream = stream
    await router.stub.StartBackgroundResponse(started, metadata=bearer(A))
    assert await router.server.jobs.settle(5) == 0
    done: dict[str, object] = orjson.loads((await loaded(router, A, response_id)).response_json)
    return done


async def _scraped() -> Samples:
    with PrometheusListener("127.0.0.1", 0) as listener:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{listener.port}/metrics")
    return samples(response.text)


async def _router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(guarded_config(fake.base_url, client("a", A)), clock=ManualClock())


async def test_a_streamed_background_response_counts_its_tokens_as_a_unary_one(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await _router(fake, start_router)
    answers = [await _ran(router, f"resp_{kind}", stream=kind == "s") for kind in ("u", "s")]
    used = [answer["usage"] for answer in answers]
    assert all(isinstance(u, dict) and u["output_tokens"] > 0 for u in used)
    found = await _scraped()
    mine = {"switchboard_client": "a", "switchboard_model_group": "chain"}
    for kind, key in (("input", "input_tokens"), ("output", "output_tokens")):
        counted = value(found, "switchboard_client_tokens_total", gen_ai_token_type=kind, **mine)
        assert counted == sum(u[key] for u in used)  # type: ignore[index]
        histogram = "gen_ai_client_token_usage_count"
        assert value(found, histogram, gen_ai_token_type=kind) == 2
    streams = {"switchboard_stream": "true", "switchboard_outcome": "OK"}
    assert value(found, "switchboard_requests_total", **streams) == 1


async def test_a_streamed_background_response_failing_mid_way_is_no_ok_request(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await _router(fake, start_router)
    fake.state.set_scenario(Scenario(chunks=6, reset_after_chunks=2))
    done = await _ran(router, "resp_f", stream=True)
    assert done["status"] == "failed"
    found = await _scraped()
    streams = {"switchboard_stream": "true", "switchboard_client": "a"}
    assert value(found, "switchboard_requests_total", **streams) == 1
    assert value(found, "switchboard_requests_total", switchboard_outcome="OK", **streams) == 0
