"""The metrics the README names are ones the router and edge make: each name of its
Observability section's **Metrics** paragraph (`switchboard.attempts`; `.active` after
`switchboard.session.bans`) is an instrument or an attribute its series carry, and each
Prometheus name it or deploy/README.md quotes (`switchboard_attempts_total`,
`gen_ai_client_operation_duration_seconds_bucket`) is one the exporter writes for them, as it
writes them (a counter's `_total`, a unit's `_seconds`: each instrument made again, with one
value, on an in-memory pipeline). No router runs: the instruments are read off the code that
builds them (tests/router_service/telemetry/test_deploy.py checks the dashboard's and alerts'
queries against a live export)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from opentelemetry.metrics import Observation
from prometheus_client.parser import text_string_to_metric_families

from http_edge._server_telemetry import HttpServerTelemetry
from router_service._throttle import AdminThrottle, KeyThrottle
from router_service.telemetry import _attributes, _instruments
from router_service.telemetry._instruments import Instruments
from router_service.telemetry.testing import TelemetryCapture
from tests.readme.markdown import ROOT, Snippet, line_of, prose, spans

_DOTTED = re.compile(r"(?<![\w.])(?:switchboard|gen_ai|http)\.[a-z_.]*[a-z_]|^\.[a-z_.]*[a-z_]$")
_PROMETHEUS = re.compile(r"\b(?:switchboard|gen_ai)_[a-z0-9_]+\b")

# How each kind of instrument takes a value (`add` the others).
_RECORD = {"create_histogram": "record", "create_gauge": "set"}
# An instrument as the code creates it: its factory (`create_counter`…), name and unit.
Made = tuple[str, str, str]


class _Meter:
    """A meter that records each instrument created on it."""

    def __init__(self) -> None:
        self.made: list[Made] = []

    def __getattr__(self, factory: str) -> Any:
        def create(name: str, *args: object, unit: str = "", **kwargs: object) -> mock.Mock:
            self.made.append((factory, name, unit))
            return mock.Mock()

        return create


@cache
def made() -> tuple[Made, ...]:
    """The metrics the router and edge create; the throttles' counters as `_Throttle._counter`
    makes them."""
    meter = _Meter()
    Instruments(meter)  # type: ignore[arg-type]
    HttpServerTelemetry(mock.Mock(), meter=meter, tracer=None)  # type: ignore[arg-type]
    throttles = [("create_counter", t._METRIC[0], "{call}") for t in (AdminThrottle, KeyThrottle)]
    return (*meter.made, *throttles)


def instruments() -> frozenset[str]:
    """The metrics the router and edge create, by their OpenTelemetry names."""
    return frozenset(name for _factory, name, _unit in made())


@cache
def exported() -> frozenset[str]:
    """The sample names the Prometheus exporter writes for those metrics (`_total`, a unit's
    `_seconds`, a histogram's `_bucket`): each made again on the metrics pipeline the router
    serves (`TelemetryCapture`'s), with one value, and read back off its Prometheus text."""
    captured = TelemetryCapture(tracing=False)
    meter = captured.meter_provider.get_meter("readme")
    for factory, name, unit in made():
        if factory.startswith("create_observable_"):
            getattr(meter, factory)(name, [lambda _options: [Observation(1)]], unit=unit)
            continue
        instrument = getattr(meter, factory)(name, unit=unit)
        getattr(instrument, _RECORD.get(factory, "add"))(1)
    families = text_string_to_metric_families(captured.prometheus_text())
    names = frozenset(sample.name for family in families for sample in family.samples)
    captured.meter_provider.shutdown()
    return names


def attributes() -> set[str]:
    """The attributes (Prometheus labels) the metrics carry: those named in `_attributes`, and
    those an instrument writes in place (`{"switchboard.config.digest": digest}`)."""
    named = {v for k, v in vars(_attributes).items() if k.isupper() and isinstance(v, str)}
    source = Path(_instruments.__file__).read_text(encoding="utf-8")
    return named | set(re.findall(r'\{"((?:switchboard|gen_ai)\.[a-z_.]+)": ', source))


def paragraph_names() -> list[Snippet]:
    """The dotted names in the code spans of the **Metrics** paragraph, an abbreviated one
    (`.active`) as it stands."""
    text = prose()
    start = text.index("**Metrics**")
    end = text.index("**Logs**", start)
    return [
        Snippet(name, line_of(text, start + m.start()))
        for m in re.finditer(r"`([^`]+)`", text[start:end])
        for name in _DOTTED.findall(m[1])
    ]


def test_every_metric_the_readme_names_is_made() -> None:
    known = instruments() | attributes()
    names = paragraph_names()
    assert len(names) >= 40
    previous = ""
    for name in names:
        if name.text.startswith("."):  # `.active` after `switchboard.session.bans`, `.limit`
            # after `switchboard.client.budget.used`: the name it extends or ends instead
            parts = name.text.count(".")
            stem = previous.rsplit(".", parts)[0]
            full = {previous + name.text, stem + name.text}
            assert full & known, f"{name.where}: no metric {' or '.join(sorted(full))}"
            continue
        assert name.text in known, f"{name.where}: no metric or attribute {name.text}"
        previous = name.text


def prometheus_names() -> list[tuple[str, str]]:
    """The Prometheus names in the code spans of the README and of deploy/README.md."""
    found = [(name, span.where) for span in spans() for name in _PROMETHEUS.findall(span.text)]
    text = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")  # no code blocks
    for span in re.finditer(r"`([^`]+)`", text):
        at = f"deploy/README.md:{line_of(text, span.start())}"
        found += [(name, at) for name in _PROMETHEUS.findall(span[1])]
    return list(dict.fromkeys(found))


@pytest.mark.parametrize(("name", "where"), prometheus_names(), ids=lambda x: x)
def test_every_prometheus_name_quoted_is_exported(name: str, where: str) -> None:
    known = exported() | {label.replace(".", "_") for label in attributes()}
    assert name in known, f"{where}: {name} is no metric (or label) the router or edge exports"


def test_the_checks_catch_a_wrong_name() -> None:
    known = instruments()
    assert "switchboard.attempts" in known and "http.server.request.duration" in known
    assert "switchboard.attempt" not in known
    assert "switchboard.auth.key.refusals" in known
    # As the exporter writes them: a counter's `_total`, a unit's, a histogram's series.
    written = exported()
    assert len(written) >= len(made())  # each made again wrote its series
    assert {"switchboard_attempts_total", "switchboard_auth_key_refusals_total"} <= written
    assert "gen_ai_client_operation_duration_seconds_bucket" in written
    assert "switchboard_config_info" in written  # a gauge, unit `1`: nothing added
    assert "switchboard_attempts" not in written  # a counter without its `_total`
    assert "gen_ai_client_operation_duration_bucket" not in written  # without its unit
    assert "switchboard_config_info_total" not in written
