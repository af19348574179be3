"""OTLP export for real: a receiver on loopback, built from opentelemetry-proto's generated
TraceService / MetricsService servicers on a grpc.aio server, gets spans and metrics from the
OTLP/gRPC exporters (ours for spans, the SDK's for metrics) — wired by hand, and wired by
`configure_telemetry` from `OTEL_*` variables in a process of its own, over gRPC and HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry import Telemetry, install
from router_service.telemetry._lean_trace import LeanTracerProvider
from router_service.telemetry._otlp import BytesOTLPSpanExporter
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.telemetry.otlp_receiver import Receiver


async def test_spans_and_metrics_reach_a_real_otlp_receiver(
    fake: FakeUpstream, start_router: StartRouter, receiver: Receiver
) -> None:
    resource = Resource.create({"service.name": "switchboard-router"})
    tracer_provider = LeanTracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(BytesOTLPSpanExporter(endpoint=receiver.endpoint, insecure=True))
    )
    exporter = OTLPMetricExporter(endpoint=receiver.endpoint, insecure=True)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    previous = install(Telemetry(tracer_provider, meter_provider))
    try:
        router = await start_router(base_config(fake.base_url))
        message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
        params = chat_pb2.ChatParams(model="chain", messages=[message])
        await router.stub.Chat(pb.ChatRequest(params=params))
        # The exporters are synchronous gRPC clients: flush them off the loop the receiver uses.
        await asyncio.to_thread(tracer_provider.force_flush)
        await asyncio.to_thread(meter_provider.force_flush)
    finally:
        install(previous)
        await asyncio.to_thread(tracer_provider.shutdown)
        await asyncio.to_thread(meter_provider.shutdown)

    # The call's SERVER span is the request's; the upstream call's span is the attempt's.
    assert {"switchboard.v1.RouterService/Chat", "chat model-a"} == receiver.span_names()
    assert {r["service.name"] for r, _ in receiver.spans} == {"switchboard-router"}
    [(_, request)] = [
        (r, s) for r, s in receiver.spans if s.name == "switchboard.v1.RouterService/Chat"
    ]
    attributes = {a.key: a.value for a in request.attributes}
    assert attributes["gen_ai.request.model"].string_value == "chain"
    assert attributes["switchboard.deployment"].string_value == "alpha/model-a"
    assert {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "switchboard.attempts",
        "switchboard.requests",
    } <= receiver.metric_names()


async def test_span_bytes_still_reach_the_receiver_after_a_reconnect(receiver: Receiver) -> None:
    """On UNAVAILABLE the SDK's exporter builds a new channel and stub; ours must still send
    the encoded bytes as they are (the receiver parses them as a request)."""
    provider = LeanTracerProvider(resource=Resource.create({"service.name": "router"}))
    exporter = BytesOTLPSpanExporter(endpoint=receiver.endpoint, insecure=True)
    kept = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("t")
    try:
        tracer.start_span("before", attributes={"n": 1}).end()
        first = await asyncio.to_thread(exporter.export, kept.get_finished_spans())
        assert first is SpanExportResult.SUCCESS
        exporter._initialize_channel_and_stub()  # what the SDK does after UNAVAILABLE
        kept.clear()
        tracer.start_span("after", attributes={"n": 2}).end()
        result = await asyncio.to_thread(exporter.export, kept.get_finished_spans())
    finally:
        await asyncio.to_thread(exporter.shutdown)
    assert result is SpanExportResult.SUCCESS
    assert [span.name for _, span in receiver.spans] == ["before", "after"]
    assert receiver.spans[1][1].attributes[0].value.int_value == 2


# argv[1]: "scraped" or not (a router without a metrics port: OTLP alone reads its metrics).
_CHILD = """
import sys
from router_service.telemetry import configure_telemetry, current, shutdown_telemetry
telemetry = configure_telemetry("switchboard-probe", scraped=sys.argv[1] == "scraped")
assert telemetry.tracing and telemetry.metering
assert telemetry.histograms is not None  # aggregated by us, merged into the OTLP push
with telemetry.tracer.start_as_current_span("probe"):
    telemetry.metrics.requests.add(1, {"switchboard.outcome": "OK"})
    telemetry.metrics.request_duration.record(0.25, {"switchboard.outcome": "OK"})
shutdown_telemetry()
"""


async def run_child(code: str, env: dict[str, str], *args: str) -> tuple[bytes, bytes]:
    """Run `code` in a fresh interpreter (telemetry is configured once per process; `args`: its
    argv[1:]); its (stdout, stderr), after checking it succeeded."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), timeout=30)
    assert child.returncode == 0, stderr.decode()
    return stdout, stderr


@pytest.fixture
async def http_receiver() -> AsyncIterator[Receiver]:
    """The same receiver behind OTLP/HTTP (protobuf bodies at /v1/traces and /v1/metrics)."""
    found = Receiver()

    async def export(request: Request) -> Response:
        body = await request.body()
        if request.url.path == "/v1/traces":
            message: Any = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        else:
            message = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
        reply = await found.Export(message, None)
        return Response(reply.SerializeToString(), media_type="application/x-protobuf")

    app = Starlette(
        routes=[Route(p, export, methods=["POST"]) for p in ("/v1/traces", "/v1/metrics")]
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await eventually(started, what="the OTLP/HTTP receiver started")
    found.endpoint = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield found
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize(
    ("protocol", "scraped"), [("grpc", "scraped"), ("http/protobuf", "scraped"), ("grpc", "no")]
)
async def test_configure_telemetry_exports_by_the_otel_variables(
    protocol: str, scraped: str, receiver: Receiver, http_receiver: Receiver
) -> None:
    if protocol != "grpc":
        receiver = http_receiver
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        "PYTHONPATH": os.getcwd(),
    }
    env.pop("OTEL_SDK_DISABLED", None)
    _, stderr = await run_child(_CHILD, env, scraped)

    async def arrived() -> bool:
        return "probe" in receiver.span_names() and "switchboard.requests" in (
            receiver.metric_names()
        )

    await eventually(arrived, what="the child's span and metric at the receiver")
    resource = next(r for r, s in receiver.spans if s.name == "probe")
    assert resource["service.name"] == "switchboard-probe"
    assert resource["deployment.environment"] == "test"
    # The local histogram went out with the push: its point, and the span as its exemplar.
    [(histogram_resource, histogram)] = [
        (r, m) for r, m in receiver.metrics if m.name == "switchboard.request.duration"
    ]
    assert histogram_resource["service.name"] == "switchboard-probe"
    [point] = histogram.histogram.data_points
    assert (point.count, point.sum) == (1, 0.25)
    [exemplar] = point.exemplars
    probe = next(s for _, s in receiver.spans if s.name == "probe")
    assert exemplar.trace_id == probe.trace_id and exemplar.span_id == probe.span_id
    # The child's logs were JSON lines (the telemetry's start-up line among them).
    assert b'"component":"telemetry"' in stderr


_EXEMPLAR_CHILD = """
from router_service.telemetry import configure_telemetry
telemetry = configure_telemetry("switchboard-probe")
with telemetry.tracer.start_as_current_span("probe"):
    telemetry.metrics.operation_duration.record(0.1, {"gen_ai.operation.name": "chat"})
# What the readers would merge into their next collection (exemplars included).
exemplars = [
    exemplar
    for metric in telemetry.histograms.metrics()
    for point in metric.data.data_points
    for exemplar in point.exemplars
]
print("EXEMPLARS", len(exemplars))
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, 0),  # Prometheus alone carries no exemplars: none are sampled
        ({"OTEL_METRICS_EXEMPLAR_FILTER": "trace_based"}, 1),  # asked for
    ],
)
async def test_exemplars_only_when_they_can_leave_the_process(
    extra: dict[str, str], expected: int
) -> None:
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console", "PYTHONPATH": os.getcwd(), **extra}
    for name in ("OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_METRICS_EXPORTER"):
        env.pop(name, None)
    stdout, _ = await run_child(_EXEMPLAR_CHILD, env)
    assert f"EXEMPLARS {expected}\n" in stdout.decode()
