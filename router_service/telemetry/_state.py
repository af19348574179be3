"""The telemetry a process runs with: a tracer, the instruments, the Prometheus registry.

One `Telemetry` is current at a time. The default is off: the API's no-op tracer and no-op meter,
so instrumented code costs a function call and nothing else. `configure_telemetry` installs the
SDK's providers once per process; tests install in-memory ones with `install` and put the old one
back. Helpers read `current()` when they run, and servers and clients read it when they are built,
so a test can run one router with tracing and another without.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING

from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider, Tracer, TracerProvider

from router_service.telemetry._instruments import Instruments

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from router_service.telemetry._histograms import LocalHistograms

__all__ = ["BanLedger", "Telemetry", "current", "install"]

SCOPE = "switchboard"
try:
    VERSION = metadata.version("switchboard")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    VERSION = "0"
# A process remembers at most this many session bans for the `bans active` gauge.
_MAX_BANS = 10_000


class BanLedger:
    """Session bans this process applied, for the `switchboard.session.bans.active` gauge. The
    bans themselves live in the StateStore (which cannot list them); this is the local view,
    bounded and pruned by age. Times are the caller's, on its runtime's clock's `monotonic()`:
    the clock the bans expire by (a ManualClock in tests)."""

    def __init__(self) -> None:
        self._bans: OrderedDict[tuple[str, str], float] = OrderedDict()

    def add(self, provider: str, session: str, at: float) -> None:
        key = (provider, session)
        self._bans.pop(key, None)
        self._bans[key] = at
        while len(self._bans) > _MAX_BANS:
            self._bans.popitem(last=False)

    def active(self, ttl_s: float, now: float) -> dict[str, int]:
        """Bans younger than `ttl_s` at `now` per provider; older ones are forgotten."""
        horizon = now - ttl_s
        while self._bans and next(iter(self._bans.values())) < horizon:
            self._bans.popitem(last=False)
        counts: dict[str, int] = {}
        for provider, _session in self._bans:
            counts[provider] = counts.get(provider, 0) + 1
        return counts


@dataclass(eq=False)
class Telemetry:
    """Providers and what is built from them. `tracer_provider=None`: tracing off;
    `meter_provider=None`: metrics off; `registry`: where Prometheus text is read from;
    `histograms`: where per-request histograms are aggregated when the provider's readers merge
    them (`MergesLocalHistograms`), else None (the SDK's histograms)."""

    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    registry: CollectorRegistry | None = None
    histograms: LocalHistograms | None = None
    tracer: Tracer = field(init=False)
    metrics: Instruments = field(init=False)
    bans: BanLedger = field(init=False)

    def __post_init__(self) -> None:
        provider = self.tracer_provider or NoOpTracerProvider()
        self.tracer = provider.get_tracer(SCOPE, VERSION)
        meters = self.meter_provider or NoOpMeterProvider()
        self.metrics = Instruments(meters.get_meter(SCOPE, VERSION), self.histograms)
        self.bans = BanLedger()

    @property
    def tracing(self) -> bool:
        return self.tracer_provider is not None

    @property
    def metering(self) -> bool:
        return self.meter_provider is not None


_current = Telemetry()


def current() -> Telemetry:
    return _current


def install(telemetry: Telemetry) -> Telemetry:
    """Make `telemetry` current; returns the one it replaces."""
    global _current
    previous, _current = _current, telemetry
    return previous
