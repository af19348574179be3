"""Scrapes of one registry that overlap (two Prometheus servers of an HA pair, the edge's
`GET /metrics` beside the router's listener in one process) or follow a collection of the
reader's own (`MeterProvider.force_flush`): each gets the whole text once, as valid Prometheus
text — no family twice, none missing."""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Attributes, Resource
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from router_service.telemetry import PrometheusListener
from router_service.telemetry._push_reader import PrometheusReader

COUNTED = "probe_requests_total"


class _Interrupting(Resource):
    """A resource whose attributes, read for `target_info` by the scrape `armed` for, run
    `interrupt` first: another scrape arrives at that point of the first one's."""

    def __init__(self) -> None:
        super().__init__({"service.name": "probe"})
        self.interrupt: Callable[[], None] | None = None

    @property
    def attributes(self) -> Attributes:
        interrupt, self.interrupt = self.interrupt, None
        if interrupt is not None:
            interrupt()
        return super().attributes


@pytest.fixture
def listened() -> Iterator[tuple[str, _Interrupting, MeterProvider]]:
    """A registry read by our Prometheus reader, served by the router's listener on loopback:
    (its URL, the resource, the provider with one counter that has counted 3)."""
    registry = CollectorRegistry()
    resource = _Interrupting()
    provider = MeterProvider(metric_readers=[PrometheusReader(registry)], resource=resource)
    provider.get_meter("probe").create_counter("probe.requests").add(3, {"route": "a"})
    try:
        with PrometheusListener("127.0.0.1", 0, registry) as listener:
            yield f"http://127.0.0.1:{listener.port}/metrics", resource, provider
    finally:
        provider.shutdown()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        text: str = response.read().decode()
        return text


def _checked(text: str) -> None:
    """Valid text with each family once, and the counter's one sample at its value."""
    helps = Counter(line.split()[2] for line in text.splitlines() if line.startswith("# HELP "))
    assert helps[COUNTED] == 1, text
    assert [name for name, n in helps.items() if n > 1] == [], text
    found = [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == COUNTED
    ]
    assert found == [({"route": "a"}, 3.0)], text


def test_a_scrape_arriving_during_another_gets_the_whole_text(
    listened: tuple[str, _Interrupting, MeterProvider],
) -> None:
    url, resource, _ = listened
    inner: list[str] = []
    # The first scrape, after its collection, builds `target_info`: a second scrape comes
    # in then (a thread of the listener's own) and is answered before the first goes on.
    resource.interrupt = lambda: inner.append(_get(url))
    outer = _get(url)
    assert len(inner) == 1
    _checked(inner[0])
    _checked(outer)


def test_a_flush_between_scrapes_adds_nothing_twice(
    listened: tuple[str, _Interrupting, MeterProvider],
) -> None:
    url, _, provider = listened
    assert provider.force_flush()  # collects through every reader: a pull reader keeps none
    _checked(_get(url))
    _checked(_get(url))
