"""deploy/ stays in step with the code: every metric the Grafana dashboard, deploy/alerts.yml and
the README's alert expressions query is one the router and edge really export, and every label
they select or group by is one those metrics carry; the Prometheus and Collector configs are
well formed."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.config import TelemetryConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.server import reload_from
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.helpers import free_port
from tests.http_edge.harness import Edge
from tests.pki import CA
from tests.replicas.harness import replica_config
from tests.router_service.telemetry.test_metrics import queued_behind_the_first, queued_config

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
README = DEPLOY.parent / "README.md"
_METRIC = re.compile(r"\b(?:gen_ai|switchboard|http_server)_[a-z0-9_]+\b")
_LABELS = re.compile(r"\bby \(([^)]*)\)|([a-z_]+)(?:=~|!~|!=|=)\"")  # PromQL's four matchers
_LABEL_VALUES = re.compile(r"\blabel_values\(\w+, (\w+)\)")  # a template variable's label


def expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "switchboard.json").read_text())
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return found


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def readme_alerts() -> list[str]:
    """The README's alert expressions: code spans over our metrics with a comparison."""
    spans = re.findall(r"`([^`]*\b(?:switchboard|gen_ai)_[^`]*)`", README.read_text())
    return [" ".join(span.split()) for span in spans if re.search(r" [<>] ", span)]


async def exported(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    captured: TelemetryCapture,
    tmp_path: Path,
    shared: dict[str, object],
) -> dict[str, set[str]]:
    """Sample names, each with its label names, after traffic that exercises every path the
    dashboard shows; `shared` is a router config on Redis, for the shared-state series."""
    config = queued_config(fake.base_url)
    budgeted = {"name": "budgeted", "key": "sk-budgeted", "tokens_per_day": 10**6}
    budgeted["usd_per_month"] = 100  # the money budget series
    config["auth"] = {"open": True, "clients": [budgeted]}  # the budget series
    price = {"input_per_mtok": 0.15, "output_per_mtok": 0.6}
    config["providers"]["beta"]["price"] = price  # type: ignore[index]  # the spend panel
    config["cache"] = {"enabled": True, "models": ["solo"]}  # the cache panel
    router = await start_router(config)
    (tmp_path / "good.yaml").write_text(yaml.safe_dump({"auth": {"open": True}, **config}))
    (tmp_path / "bad.yaml").write_text("providers: 42\n")
    for name in ("bad.yaml", "good.yaml"):  # the config panels: a failed reload, then a served one
        await reload_from(router.server, tmp_path / name)
    edge = await start_edge(router)
    solo = chat_pb2.ChatParams(
        model="solo", messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_SYSTEM, text="q")]
    )
    # Two calls at once queue for solo's one key: the cache off, or the second would wait for
    # the first's answer instead (identical misses make one upstream call).
    off = routing_pb2.RoutingOptions(cache=routing_pb2.CACHE_MODE_OFF)
    await queued_behind_the_first(fake, router, [pb.ChatRequest(params=solo, routing=off)] * 2)
    for _ in range(2):  # the cache panel: a miss, then a hit
        await router.stub.Chat(pb.ChatRequest(params=solo))
    fake.state.set_scenario(Scenario.rate_limited(retry_after="30"), key="sk-alpha-1")
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    params = chat_pb2.ChatParams(model="chain", messages=[message])
    params.stream_options.include_usage = True
    async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=params)):
        pass  # a retry with the other key, a stream with a first chunk and usage
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")
    body: dict[str, Any] = {"model": "chain", "messages": [{"role": "user", "content": "x"}]}
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        assert (await http.post("/v1/chat/completions", json=body)).status_code == 200
    await router.runtime.gauges.poll()
    replica = await start_router(shared)
    await replica.stub.Chat(pb.ChatRequest(params=solo))  # its plan read: a read-cache miss
    await replica.runtime.gauges.poll()
    closed = {**shared, "state": {"backend": "redis", "url": f"redis://127.0.0.1:{free_port()}/0"}}
    lost = await start_router(closed)  # the shared-state panels: a replica that lost Redis
    await lost.stub.Chat(pb.ChatRequest(params=solo))
    await lost.runtime.gauges.poll()
    issued = CA(tmp_path, "deploy-ca").issue("router", server=True)  # the certificate panel
    tls = {"cert_file": str(issued.cert), "key_file": str(issued.key)}
    await start_router(base_config(fake.base_url, server={"port": 0, "tls": tls}))
    families = list(text_string_to_metric_families(captured.prometheus_text()))
    labels: dict[str, set[str]] = {}  # each sample name's label names
    for sample in (s for f in families for s in f.samples):
        labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


async def test_the_dashboard_queries_what_is_exported(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    captured: TelemetryCapture,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
) -> None:
    shared = replica_config(fake.base_url, redis_url, redis_prefix)
    shared["models"]["solo"] = {"deployments": [{"provider": "alpha", "model": "model-z"}]}
    labels = await exported(fake, start_router, start_edge, captured, tmp_path, shared)
    queried: set[str] = set()
    alerts = readme_alerts()
    assert any("switchboard_state_degraded" in alert for alert in alerts)
    alerts += [rule["expr"] for rule in alert_rules()]
    for expr in expressions() + alerts:
        by_or_selected = set[str]()
        for by, selector in _LABELS.findall(expr):
            by_or_selected |= {n.strip() for n in by.split(",") if n.strip()} | {selector} - {""}
        by_or_selected |= set(_LABEL_VALUES.findall(expr))
        metrics = set(_METRIC.findall(expr)) - by_or_selected  # label names share the prefixes
        assert metrics - set(labels) == set(), expr
        # The labels of the series it queries, not of any: a selector on a label the metric
        # lacks matches nothing (a panel empty for one model group). `instance` and `job`:
        # what Prometheus adds to every series it scrapes.
        carried = set[str]().union(*(labels[metric] for metric in metrics))
        assert by_or_selected - carried - {"instance", "job"} == set(), expr
        queried |= metrics
    assert len(queried) >= 15


def test_the_prometheus_and_collector_configs_are_well_formed() -> None:
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert set(jobs) == {"switchboard-router", "switchboard-edge"}
    assert all(job["metrics_path"] == "/metrics" for job in jobs.values())
    collector = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    pipelines = collector["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    for pipeline in pipelines.values():
        assert pipeline["receivers"] == ["otlp"]
        for stage in ("processors", "exporters"):
            assert set(pipeline[stage]) <= set(collector[stage])
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")


def test_the_alert_rules_are_well_formed_and_loaded_by_the_scrape_config() -> None:
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["alerts.yml"]
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)) >= 8
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        expr = rule["expr"]
        assert re.search(r" (?:[<>]=?|==|!=) ", expr), f"{rule['alert']}: no comparison"
        depth = 0
        for char in expr:
            depth += {"(": 1, ")": -1}.get(char, 0)
            assert depth >= 0, f"{rule['alert']}: unbalanced parentheses"
        assert depth == 0, f"{rule['alert']}: unbalanced parentheses"
        assert "$__" not in expr, f"{rule['alert']}: a Grafana variable"


def test_the_scrape_config_says_the_metrics_must_listen_beyond_loopback() -> None:
    """Its targets are other hosts, and the router's listener binds loopback unless told."""
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = prometheus["scrape_configs"]
    targets = [t for job in jobs for group in job["static_configs"] for t in group["targets"]]
    assert not any(t.startswith(("127.", "localhost")) for t in targets)
    assert TelemetryConfig().prometheus_host == "127.0.0.1"
    assert "prometheus_host: 0.0.0.0" in (DEPLOY / "prometheus.yml").read_text()


def test_an_error_ratio_counts_no_caller_that_left() -> None:
    """A call its caller cancelled (a user who stops a reply, a client that gives up) ended with
    no error: the dashboard's error ratio and the error-ratio alert count the outcomes that
    failed, not `CANCELLED` (a crowd closing their chats would page on-call), nor a PickRoute
    lease that expired unreported (`UNKNOWN`: no outcome known, as a service that picks routes
    and never reports would have every decision; not a failure of the model group's)."""
    failed = re.compile(r"switchboard_requests_total\{([^}]*switchboard_outcome!~[^}]*)\}")
    selectors = [
        match.group(1)
        for expr in [*expressions(), *(rule["expr"] for rule in alert_rules()), *readme_alerts()]
        for match in failed.finditer(expr)
    ]
    assert len(selectors) >= 2  # the dashboard's stat and the alert
    for selector in selectors:
        outcome = re.search(r'switchboard_outcome!~"([^"]*)"', selector)
        assert outcome is not None, selector
        assert {"CANCELLED", "UNKNOWN"} <= set(outcome.group(1).split("|")), selector


def test_an_error_ratio_is_over_calls_with_an_outcome() -> None:
    """The error ratio's calls (its denominator) leave out `UNKNOWN` as its errors do: a service
    that picks routes and never reports would otherwise dilute a model group's ratio with its
    expired leases and hide the proxied calls' real failures from the alert (10 of 100 calls
    failed read as 1% beside 900 unreported picks)."""
    ratios = [
        expr
        for expr in [*expressions(), *(rule["expr"] for rule in alert_rules())]
        if re.search(r'switchboard_outcome!~"[^"]*UNKNOWN', expr) and " / " in expr
    ]
    assert len(ratios) >= 2  # the dashboard's stat and the alert
    for expr in ratios:
        calls = expr.split(" / ", 1)[1]
        selector = re.search(r"switchboard_requests_total(\{[^}]*\})?", calls)
        assert selector is not None, expr
        assert 'switchboard_outcome!="UNKNOWN"' in (selector.group(1) or ""), expr
