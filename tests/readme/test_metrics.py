"""The metrics the README names are ones the router and edge make: each name of its
Observability section's **Metrics** paragraph (`switchboard.attempts`; `.active` after
`switchboard.session.bans`) is an instrument or an attribute its series carry, and each
Prometheus name it or deploy/README.md quotes (`switchboard_attempts_total`,
`gen_ai_client_operation_duration_seconds_bucket`) is one the exporter writes for them. Nothing
runs: the instruments are read off the code that builds them (tests/router_service/telemetry/
test_deploy.py checks the dashboard's and alerts' queries against a live export)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from http_edge._server_telemetry import HttpServerTelemetry
from router_service._throttle import AdminThrottle, KeyThrottle
from router_service.telemetry import _attributes, _instruments
from router_service.telemetry._instruments import Instruments
from tests.readme.markdown import ROOT, Snippet, line_of, prose, spans

_DOTTED = re.compile(r"(?<![\w.])(?:switchboard|gen_ai|http)\.[a-z_.]*[a-z_]|^\.[a-z_.]*[a-z_]$")
_PROMETHEUS = re.compile(r"\b(?:switchboard|gen_ai)_[a-z0-9_]+\b")
# What the exporter adds to an instrument's name: its unit, `_total` (a counter), a histogram's
# series.
_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_seconds")


class _Meter:
    """A meter that records the name of each instrument created on it."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __getattr__(self, factory: str) -> Any:
        def create(name: str, *args: object, **kwargs: object) -> mock.Mock:
            self.names.add(name)
            return mock.Mock()

        return create


@cache
def instruments() -> frozenset[str]:
    """The metrics the router and edge create, by their OpenTelemetry names."""
    meter = _Meter()
    Instruments(meter)  # type: ignore[arg-type]
    HttpServerTelemetry(mock.Mock(), meter=meter, tracer=None)  # type: ignore[arg-type]
    return frozenset(meter.names | {AdminThrottle._METRIC[0], KeyThrottle._METRIC[0]})


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
    known = {name.replace(".", "_") for name in instruments() | attributes()}
    stem = name
    for suffix in _SUFFIXES:  # in the order the exporter appends them, undone last first
        stem = stem.removesuffix(suffix) if stem not in known else stem
    assert stem in known, f"{where}: {name} is no metric (or label) the router or edge exports"


def test_the_checks_catch_a_wrong_name() -> None:
    known = instruments()
    assert "switchboard.attempts" in known and "http.server.request.duration" in known
    assert "switchboard.attempt" not in known
    assert "switchboard.auth.key.refusals" in known
