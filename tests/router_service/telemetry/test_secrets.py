"""Telemetry never carries a raw upstream key: not in span names, attributes, events or status
descriptions, not in metric text — even when the upstream echoes the key back (the companion of
tests/router_service/server/test_key_pools.py::test_raw_keys_never_leak)."""

from __future__ import annotations

import contextlib

import grpc

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter
from tests.router_service.telemetry.spans import ended

SECRETS = ["sk-leak-test-bad", "sk-leak-test-limited", "sk-leak-test-good"]


def config(fake_url: str) -> dict[str, object]:
    return {
        "providers": {"alpha": {"base_url": fake_url, "keys": SECRETS}},
        "models": {
            "a": {"deployments": [{"provider": "alpha", "model": "model-a"}]},
            "b": {"deployments": [{"provider": "alpha", "model": "model-b"}]},
        },
        "server": {"port": 0},
    }


def ask(model: str) -> chat_pb2.ChatParams:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    return chat_pb2.ChatParams(model=model, messages=[message])


async def test_spans_and_metrics_never_contain_a_raw_key(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(config(fake.base_url))
    echo = {"error": {"message": f"Incorrect API key provided: {SECRETS[0]}", "code": 400}}
    fake.state.set_scenario(Scenario(status=400, error_body=echo), key=SECRETS[0])
    fake.state.set_scenario(Scenario.rate_limited(retry_after="5"), key=SECRETS[1])
    passthrough = {"error": {"message": f"field not allowed for {SECRETS[2]}", "code": 422}}
    fake.state.set_scenario(Scenario(status=422, error_body=passthrough), model="model-b")
    for model in ("a", "a", "a", "b", "b"):
        with contextlib.suppress(grpc.aio.AioRpcError):
            await router.stub.Chat(pb.ChatRequest(params=ask(model)))
    async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=ask("a"))):
        pass
    await router.runtime.gauges.poll()

    spans = (await ended(captured, "switchboard.v1.RouterService/ChatStream")).spans
    seen = [captured.prometheus_text()]
    for span in spans:
        seen += [span.name, str(span.attributes), span.status.description or ""]
        seen += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    blob = "\n".join(seen)
    assert "fp_" in blob  # fingerprints are there
    assert "AUTH_INVALID" in blob and "BAD_REQUEST" in blob  # so are the failures
    for secret in SECRETS:
        assert secret not in blob
