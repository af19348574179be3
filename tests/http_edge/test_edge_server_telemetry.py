"""The edge's HTTP server telemetry (`_server_telemetry.HttpServerTelemetry`). Metrics: one
duration sample per request labelled by route template and status (hot routes, routed ones,
failures, unknown URLs without a route), nothing for probes and scrapes, no request left counted
as active. Spans: one
SERVER span per request, named by its route, continuing the caller's trace, parent of the gRPC
call; none for probes, and none when the caller's trace is not sampled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, StatusCode

from clients import ErrorDetails
from clients.switchboard.v1 import router_service_pb2 as rs
from router_service.telemetry.testing import TelemetryCapture
from tests.http_edge.harness import EdgeFactory, StubRouter, abort_with

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture(tracing=False) as capture:
        yield capture


def durations(captured: TelemetryCapture) -> dict[tuple[Any, ...], int]:
    """Requests counted in http.server.request.duration by (route, status, error type)."""
    found: dict[tuple[Any, ...], int] = {}
    for attributes, point in captured.points("http.server.request.duration"):
        key = (
            attributes.get("http.route"),
            attributes.get("http.response.status_code"),
            attributes.get("error.type"),
        )
        assert attributes["http.request.method"] in ("GET", "POST")
        assert attributes["url.scheme"] == "http"
        found[key] = found.get(key, 0) + point.count
    return found


async def test_requests_are_measured_by_route_and_status(
    captured: TelemetryCapture, stub: StubRouter, start_edge: EdgeFactory
) -> None:
    calls = 0

    async def on_chat(request: Any, context: Any) -> rs.ChatResponse:
        nonlocal calls
        calls += 1
        if calls == 2:
            details = ErrorDetails(
                code=grpc.StatusCode.UNAVAILABLE, message="no upstream", reason="UNAVAILABLE"
            )
            await abort_with(context, details)
        return rs.ChatResponse()

    stub.on_chat = on_chat
    stub.on_list_models = lambda request, context: _models()
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        assert (await http.post("/v1/chat/completions", json=BODY)).status_code == 200
        assert (await http.post("/v1/chat/completions", json=BODY)).status_code == 503
        assert (await http.get("/v1/models/some-model")).status_code == 404
        assert (await http.get("/no/such/url")).status_code == 404
        for probe in ("/healthz", "/metrics", "/admin"):
            await http.get(probe)
    assert durations(captured) == {
        ("/v1/chat/completions", 200, None): 1,
        ("/v1/chat/completions", 503, "503"): 1,
        ("/v1/models/{model_id:path}", 404, None): 1,
        (None, 404, None): 1,  # an unknown URL: no route label, never the raw path
    }
    active = [point.value for _, point in captured.points("http.server.active_requests")]
    assert active and all(value == 0 for value in active)


async def _models() -> rs.ListModelsResponse:
    return rs.ListModelsResponse(models=[rs.ModelInfo(id="other")])


@pytest.fixture
def traced() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture


async def test_server_spans_continue_the_callers_trace_and_name_the_route(
    traced: TelemetryCapture, stub: StubRouter, start_edge: EdgeFactory
) -> None:
    async def on_chat(request: Any, context: Any) -> rs.ChatResponse:
        details = ErrorDetails(code=grpc.StatusCode.INTERNAL, message="boom", reason="INTERNAL")
        await abort_with(context, details)
        raise AssertionError("unreachable")

    stub.on_chat = on_chat
    stub.on_list_models = lambda request, context: _models()
    edge = await start_edge()
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    caller = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        assert (await http.post("/v1/chat/completions", json=BODY, headers=caller)).status_code
        assert (await http.get("/v1/models/some-model")).status_code == 404
        assert (await http.get("/no/such/url")).status_code == 404
        await http.get("/healthz")
    servers = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    by_name = {s.name: s for s in servers}
    assert set(by_name) == {"POST /v1/chat/completions", "GET /v1/models/{model_id:path}", "GET"}
    chat = by_name["POST /v1/chat/completions"]
    assert chat.parent is not None and chat.parent.span_id == int(parent_id, 16)
    assert chat.context.trace_id == int(trace_id, 16)
    assert chat.attributes is not None
    assert cast(int, chat.attributes["http.response.status_code"]) >= 500
    assert chat.status.status_code is StatusCode.ERROR
    # The gRPC call to the router failed: its CLIENT span, a child of the request's span, says how.
    [client] = [s for s in traced.spans() if s.kind is SpanKind.CLIENT]
    assert client.parent is not None and client.parent.span_id == chat.context.span_id
    assert client.name == "switchboard.v1.RouterService/Chat"
    assert client.attributes is not None and client.attributes["error.type"] == "INTERNAL"
    assert client.status.status_code is StatusCode.ERROR
    models = by_name["GET /v1/models/{model_id:path}"]
    assert models.attributes is not None and models.attributes["http.route"] == (
        "/v1/models/{model_id:path}"
    )
    assert models.status.status_code is not StatusCode.ERROR  # a 404 is the caller's


async def test_a_sampled_out_caller_gets_its_answer_and_no_span(
    traced: TelemetryCapture, stub: StubRouter, start_edge: EdgeFactory
) -> None:
    async def on_chat(request: Any, context: Any) -> rs.ChatResponse:
        return rs.ChatResponse()

    stub.on_chat = on_chat
    edge = await start_edge()
    not_sampled = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        response = await http.post("/v1/chat/completions", json=BODY, headers=not_sampled)
    assert response.status_code == 200
    assert [s for s in traced.spans() if s.kind is SpanKind.SERVER] == []


class _PostsOnly(Sampler):
    """A sampler deciding by the span's start attributes, as an operator's may (OpenTelemetry's
    HTTP conventions name the method, scheme and path sampling-relevant)."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        attributes = kwargs.get("attributes", args[4] if len(args) > 4 else None) or {}
        server = "url.scheme" in attributes  # (the gRPC client span has its own)
        if server and attributes.get("http.request.method") != "POST":
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "posts-only"


async def test_a_sampler_sees_the_request_at_the_spans_start(
    traced: TelemetryCapture, stub: StubRouter, start_edge: EdgeFactory
) -> None:
    stub.on_chat = lambda request, context: _chat()
    stub.on_list_models = lambda request, context: _models()
    traced.tracer_provider.sampler = _PostsOnly()
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        assert (await http.get("/v1/models/other")).status_code == 200
        assert (await http.post("/v1/chat/completions", json=BODY)).status_code == 200
    (server,) = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    assert server.name == "POST /v1/chat/completions" and server.attributes is not None
    assert server.attributes["url.path"] == "/v1/chat/completions"
    assert server.attributes["http.response.status_code"] == 200


async def _chat() -> rs.ChatResponse:
    return rs.ChatResponse()


async def test_the_edge_telemetry_is_ours_alone_also_with_global_providers_set(
    traced: TelemetryCapture,
    stub: StubRouter,
    start_edge: EdgeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In production our telemetry also sets OpenTelemetry's global providers; FastAPI (≥ 0.16x)
    would then trace and measure each request a second time. One SERVER span, one duration
    sample, both ours."""
    from opentelemetry import trace
    from opentelemetry.metrics import _internal as global_metrics

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", traced.tracer_provider)
    monkeypatch.setattr(global_metrics, "_METER_PROVIDER", traced.meter_provider)

    async def on_chat(request: Any, context: Any) -> rs.ChatResponse:
        return rs.ChatResponse()

    stub.on_chat = on_chat
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        assert (await http.post("/v1/chat/completions", json=BODY)).status_code == 200
    servers = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["POST /v1/chat/completions"]
    assert {s.instrumentation_scope.name for s in servers if s.instrumentation_scope} == {
        "switchboard"
    }
    assert durations(traced) == {("/v1/chat/completions", 200, None): 1}


async def test_methods_outside_the_known_set_are_other(
    traced: TelemetryCapture, stub: StubRouter, start_edge: EdgeFactory
) -> None:
    """The HTTP parser takes some forty methods (PURGE, PROPFIND, MKCOL…): as labels they are
    `_OTHER` (semantic conventions), the sent one on the span only, so a scanner trying them
    all adds one series, not forty."""
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        for method in ("PURGE", "PROPFIND", "GET"):
            assert (await http.request(method, "/v1/chat/completions")).status_code == 405
    methods = {a["http.request.method"] for a, _ in traced.points("http.server.request.duration")}
    assert methods == {"_OTHER", "GET"}
    active = {a["http.request.method"] for a, _ in traced.points("http.server.active_requests")}
    assert active == {"_OTHER", "GET"}
    servers = {s.name: s for s in traced.spans() if s.kind is SpanKind.SERVER}
    assert set(servers) == {"HTTP /v1/chat/completions", "GET /v1/chat/completions"}
    sent = [
        (s.attributes or {}).get("http.request.method_original")
        for s in traced.spans()
        if s.name == "HTTP /v1/chat/completions"
    ]
    assert sorted(sent) == ["PROPFIND", "PURGE"]  # type: ignore[type-var]


async def test_request_durations_have_buckets_for_minute_long_streams(
    captured: TelemetryCapture, stub: StubRouter, start_edge: EdgeFactory
) -> None:
    """A chat completion streams for seconds to minutes: HTTP's advisory buckets end at 10 s,
    past which every answer was `+Inf`. The edge's are the GenAI duration buckets, as the
    router's request duration."""
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        await http.get("/v1/chat/completions")
    [(_, point)] = captured.points("http.server.request.duration")
    assert point.explicit_bounds[0] == 0.01 and point.explicit_bounds[-1] == 81.92


@pytest.mark.parametrize(
    ("known", "expected"),
    [("", {"GET", "_OTHER"}), (" ", {"GET", "_OTHER"}), ("PURGE, GET", {"GET", "PURGE"})],
)
async def test_the_known_methods_variable_replaces_the_list_and_empty_is_unset(
    known: str,
    expected: set[str],
    traced: TelemetryCapture,
    stub: StubRouter,
    start_edge: EdgeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS=` (an unset `${VAR}` in a manifest) is unset, as
    OpenTelemetry reads every empty variable: the default list, not every method `_OTHER`."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", known)
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        for method in ("PURGE", "GET"):
            assert (await http.request(method, "/v1/chat/completions")).status_code == 405
    methods = {a["http.request.method"] for a, _ in traced.points("http.server.request.duration")}
    assert methods == expected


async def test_an_attacker_sized_path_is_cut_in_spans_and_errors(
    traced: TelemetryCapture, stub: StubRouter, start_edge: EdgeFactory
) -> None:
    """A path holding an id of kilobytes (a stored response's, or an unknown URL's) is repeated
    by its first 512 bytes only: in the SERVER span's `url.path` and in the unknown-URL 404."""
    edge = await start_edge()
    long = "é" * 2500  # 5,000 bytes
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        unknown = await http.get(f"/no/such/{long}")
        await http.delete(f"/v1/responses/{long}")
    assert unknown.status_code == 404
    shown = "/no/such/" + "é" * 251 + "…"  # 511 bytes: whole characters only
    assert unknown.json()["error"]["message"] == f"Unknown request URL: GET {shown}"
    servers = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    paths = {str((s.attributes or {})["url.path"]) for s in servers}
    assert paths == {shown, "/v1/responses/" + "é" * 249 + "…"}


async def test_the_callers_request_id_is_on_its_server_span(
    traced: TelemetryCapture, stub: StubRouter, start_edge: EdgeFactory
) -> None:
    """The `x-request-id` a caller sent (and got back) finds its trace: the SERVER span has it as
    OpenTelemetry names a request header, a list of one value; only one the edge echoes."""
    stub.on_chat = lambda request, context: _chat()
    edge = await start_edge()
    sent = ("req-quote-me", None, "x" * 1025)  # the last, past the 1024 the edge forwards
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        for request_id in sent:
            headers = {"x-request-id": request_id} if request_id else {}
            await http.post("/v1/chat/completions", json=BODY, headers=headers)
    servers = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    header = "http.request.header.x-request-id"
    found = [(s.attributes or {}).get(header) for s in servers]
    assert found == [("req-quote-me",), None, None]


async def test_a_path_that_only_begins_like_a_probe_is_measured(
    captured: TelemetryCapture, start_edge: EdgeFactory
) -> None:
    """What scanners ask for (`/admin.php`, `/administrator/`, `/metrics.json`) is an unknown
    URL like any other, counted as one; the probes, the scrape and the admin pages are not."""
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        scanned = ("/admin.php", "/administrator/index", "/metrics.json", "/healthzz", "/Admin")
        for path in scanned:
            assert (await http.get(path)).status_code == 404
        for probe in ("/healthz", "/readyz", "/metrics", "/admin", "/admin/keys"):
            await http.get(probe)
        for form in ("/admin/", "/admin//keys", "/admin?x=1", "/admin;x=1", "/healthz/"):
            await http.get(form)  # the same paths (`_paths.tidied`)
    assert durations(captured) == {(None, 404, None): len(scanned)}
