"""Every metric the router and edge record, built once per meter.

Labels are bounded: provider, deployment, model group, operation, outcome, key state — all from
configuration or enums — and key fingerprints only where a provider's configured keys bound them.
Never a key, a session id or a caller-chosen string."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from router_service.telemetry._attributes import TLS_ROLE

if TYPE_CHECKING:  # it imports the SDK's metrics, which a router with metrics off skips
    from router_service.telemetry._histograms import LocalHistograms

__all__ = ["DURATION_BUCKETS", "Instruments", "LocalCounter", "StateView"]

# The GenAI semantic conventions' buckets (also the edge's HTTP requests': completions stream long).
DURATION_BUCKETS: tuple[float, ...] = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)
DURATION_BUCKETS += (5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = [4**power for power in range(14)]  # theirs too: 1 to 64 Mi tokens, x4 each
_TTFC_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0]
_TTFC_BUCKETS += [7.5, 10.0]
_CHUNK_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]
_WAIT_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]

Labels = tuple[tuple[str, str], ...]
_Callback = Callable[[CallbackOptions], Iterable[Observation]]


@dataclass
class StateView:
    """One router's state as last polled (keys, cooldowns, bans), read by the gauges."""

    keys: dict[Labels, int] = field(default_factory=dict)
    in_flight: dict[Labels, int] = field(default_factory=dict)
    cooldowns: dict[Labels, int] = field(default_factory=dict)
    bans: dict[Labels, int] = field(default_factory=dict)
    read_cache: dict[Labels, int] = field(default_factory=dict)  # totals since start
    # The shared state's reachability (Redis backend): `StateStore.outage_counts()`.
    degraded: dict[Labels, int] = field(default_factory=dict)
    outages: dict[Labels, int] = field(default_factory=dict)  # totals since start
    fallbacks: dict[Labels, int] = field(default_factory=dict)  # totals since start
    # Token budgets (`auth.clients[].tokens_per_day` / `_month`): by client and period.
    budget_used: dict[Labels, int] = field(default_factory=dict)
    budget_limit: dict[Labels, int] = field(default_factory=dict)
    # Money budgets (`usd_per_day` / `_month`), in USD: gauges of their own (one unit a metric).
    spend_used: dict[Labels, float] = field(default_factory=dict)
    spend_limit: dict[Labels, float] = field(default_factory=dict)


class LocalCounter:
    """A counter added up in the process, reported through an observable counter: an `add` is a
    dict update (~1 µs) instead of the SDK's measurement path (~8: attributes cleaned, hashed,
    aggregated under a lock), for the counters every request moves. Exported as a counter
    (cumulative sums per attribute set), which drops a negative amount as the SDK's does (a
    total that went down reads as a reset); with `up_down`, as an up-down counter (in flight)."""

    def __init__(
        self, meter: Meter, name: str, *, unit: str, description: str, up_down: bool = False
    ) -> None:
        self._totals: dict[tuple[tuple[str, Any], ...], float] = {}
        self._monotonic = not up_down  # (usage an upstream said was below zero)
        create = (
            meter.create_observable_up_down_counter if up_down else meter.create_observable_counter
        )
        create(name, callbacks=[self._observe], unit=unit, description=description)

    def add(self, amount: float, attributes: Mapping[str, Any]) -> None:
        if amount < 0 and self._monotonic:
            return
        key = tuple(sorted(attributes.items()))
        self._totals[key] = self._totals.get(key, 0.0) + amount

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        # Collection runs on the reader's thread: iterate over a snapshot (one C-level copy).
        return [Observation(total, dict(key)) for key, total in list(self._totals.items())]


class Instruments:
    """`histograms`: where the per-request histograms are aggregated (`LocalHistograms`, merged
    by the readers), or None for the SDK's own (`meter`)."""

    def __init__(self, meter: Meter, histograms: LocalHistograms | None = None) -> None:
        self._histograms(histograms or meter)
        self._counters(meter)
        self._client_counters(meter)
        self.streams_open = 0  # streams open now: a plain count that a gauge reads
        self.views: dict[int, StateView] = {}  # each router's last polled state
        # The sha256 prefix of the config file this router serves (set at start and by reloads).
        self.config_digest: str | None = None
        # When this process's certificates expire (Unix time), by role: "server", "client" (edge).
        self.certificates: dict[str, float] = {}
        self._gauges(meter)

    def _histograms(self, factory: Meter | LocalHistograms) -> None:
        hist = factory.create_histogram
        self.operation_duration = hist(
            "gen_ai.client.operation.duration",
            unit="s",
            description="Duration of one upstream GenAI call (an attempt; a stream until it ends).",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.token_usage = hist(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens used per request, by gen_ai.token.type (input, output).",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.time_to_first_chunk = hist(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time from the router receiving a stream request to its first chunk.",
            explicit_bucket_boundaries_advisory=_TTFC_BUCKETS,
        )
        self.time_per_output_chunk = hist(
            "gen_ai.client.operation.time_per_output_chunk",
            unit="s",
            description="Mean gap between a stream's chunks after the first, one value per stream.",
            explicit_bucket_boundaries_advisory=_CHUNK_BUCKETS,
        )
        self.request_duration = hist(
            "switchboard.request.duration",
            unit="s",
            description="Duration of one router request, every attempt included.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.key_queue_wait = hist(
            "switchboard.key.queue.duration",
            unit="s",
            description="Time spent waiting to lease an upstream key.",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )

    def _counters(self, meter: Meter) -> None:
        count = meter.create_counter
        # The two counters every request moves are added up here and observed at collection.
        self.requests = LocalCounter(
            meter,
            "switchboard.requests",
            unit="{request}",
            description="Router requests by outcome.",
        )
        self.attempts = LocalCounter(
            meter,
            "switchboard.attempts",
            unit="{attempt}",
            description="Upstream attempts by outcome.",
        )
        self.retries = count(
            "switchboard.retries",
            unit="{retry}",
            description="Attempts retried with another key of the same deployment.",
        )
        self.fallbacks = count(
            "switchboard.fallbacks",
            unit="{fallback}",
            description="Requests moved on from a deployment to the next candidate.",
        )
        self.cooldowns = count(
            "switchboard.cooldowns",
            unit="{cooldown}",
            description="Cooldowns and disables applied, by scope (key_model, key, deployment).",
        )
        self.session_bans = count(
            "switchboard.session.bans",
            unit="{ban}",
            description="Session bans (provider) and skips (deployment) applied.",
        )
        self.config_reloads = count(
            "switchboard.config.reloads",
            unit="{reload}",
            description="Config reloads by outcome (ok; failed: the previous config still serves).",
        )

    def _client_counters(self, meter: Meter) -> None:
        """What each client used and what the response cache spared it."""
        self.client_tokens = LocalCounter(
            meter,
            "switchboard.client.tokens",
            unit="{token}",
            description="Tokens used by each client (auth.clients[].name), by model group and "
            "gen_ai.token.type (input, output): what each app consumed.",
        )
        self.client_spend = LocalCounter(
            meter,
            "switchboard.client.spend",
            unit="{USD}",  # an annotation: Prometheus keeps the name, no `_USD` suffix
            description="What each client's calls cost (auth.clients[].name), by model group: "
            "their usage at the configured prices of the deployments that answered; calls to "
            "deployments without a price are not in it.",
        )
        self.cache_lookups = LocalCounter(
            meter,
            "switchboard.cache.lookups",
            unit="{request}",
            description="Requests the response cache applied to, by switchboard.cache: hit "
            "(answered from the cache), miss (asked upstream, kept), bypass (the caller asked "
            "for a fresh answer).",
        )
        self.guardrail_matches = LocalCounter(
            meter,
            "switchboard.guardrail.matches",
            unit="{match}",
            description="What guardrails found in requests' and answers' text, by rule, "
            "action (block, redact), detector (api_key, email, …; pattern: an operator regex) "
            "and side (request, response). A blocked call or choice counts the one find that "
            "blocked it.",
        )
        self._background_counters(meter)

    def _background_counters(self, meter: Meter) -> None:
        """What runs beside the calls: cluster flights' waits, background responses."""
        self.cluster_waits = LocalCounter(
            meter,
            "switchboard.cache.cluster_waits",
            unit="{wait}",
            description="Cache misses that waited for another replica's identical call "
            "(cache.coalesce: cluster), by how the wait ended (landing): kept (served its "
            "answer), empty (it failed or its caller left: asked upstream itself), lapsed "
            "(nothing heard before its lease ran out).",
        )
        self.background_running = LocalCounter(
            meter,
            "switchboard.responses.background.running",
            unit="{response}",
            description="Background responses this replica is running now.",
            up_down=True,
        )
        self.background_ended = LocalCounter(
            meter,
            "switchboard.responses.background.ended",
            unit="{response}",
            description="Background responses this replica ran, by the status they ended with "
            "(completed, incomplete, failed, cancelled; deleted: deleted while running).",
        )
        self._batch_counters(meter)

    def _batch_counters(self, meter: Meter) -> None:
        running, ended, lines = (f"switchboard.batches.{n}" for n in ("running", "ended", "lines"))
        self.batches_running = LocalCounter(
            meter,
            running,
            unit="{batch}",
            description="Batches this replica runs now.",
            up_down=True,
        )
        self.batches_ended = LocalCounter(
            meter, ended, unit="{batch}", description="Batches this replica ended, by status."
        )
        self.batch_lines = LocalCounter(
            meter, lines, unit="{request}", description="Batch lines run here, by outcome."
        )

    def _gauges(self, meter: Meter) -> None:
        meter.create_observable_up_down_counter(
            "switchboard.streams.active",
            callbacks=[lambda options: [Observation(self.streams_open)]],
            unit="{stream}",
            description="Streams open now.",
        )
        meter.create_observable_counter(
            "switchboard.state.read_cache",
            callbacks=[self._observe("read_cache", shared=True)],
            unit="{read}",
            description="Reads of shared state (cooldowns, session rules, sticky deployments) "
            "answered from the replica's read cache (hit) or from Redis (miss), and keys Redis "
            "reported changed (invalidated).",
        )
        self._shared_state(meter)
        self._budgets(meter)
        gauge = meter.create_observable_gauge
        gauge(
            "switchboard.config.info",
            callbacks=[self._observe_config],
            unit="1",
            description="1, labelled with the digest of the config file in force: replicas "
            "serving different files show as several series.",
        )
        gauge(
            "switchboard.tls.certificate.expiry",
            callbacks=[self._observe_certificates],
            unit="s",
            description="Unix time at which the TLS certificate this process presents expires "
            "(role: server, on the port it serves; client, the edge's to the router). Rotated "
            "files move it; alert well before it.",
        )
        gauge(
            "switchboard.keys",
            callbacks=[self._observe("keys")],
            unit="{key}",
            description="Upstream keys by provider and state (active, cooling, disabled).",
        )
        gauge(
            "switchboard.key.in_flight",
            callbacks=[self._observe("in_flight")],
            unit="{request}",
            description="Requests in flight per key fingerprint in this process (summed over "
            "replicas: the key's total).",
        )
        gauge(
            "switchboard.cooldowns.active",
            callbacks=[self._observe("cooldowns")],
            unit="{cooldown}",
            description="Cooldowns in force: deployment, key × model, disabled keys.",
        )
        gauge(
            "switchboard.session.bans.active",
            callbacks=[self._observe("bans")],
            unit="{ban}",
            description="Session bans applied by this process and not yet expired.",
        )

    def _budgets(self, meter: Meter) -> None:
        gauge = meter.create_observable_gauge
        gauge(
            "switchboard.client.budget.used",
            callbacks=[self._observe("budget_used", shared=True)],
            unit="{token}",
            description="Tokens a client used in its budget's current period (day or month), "
            "shared by the replicas: alert on it over switchboard.client.budget.limit.",
        )
        gauge(
            "switchboard.client.budget.limit",
            callbacks=[self._observe("budget_limit", shared=True)],
            unit="{token}",
            description="A client's token budget per period (auth.clients[].tokens_per_day, "
            "tokens_per_month).",
        )
        gauge(
            "switchboard.client.budget.usd.used",
            callbacks=[self._observe("spend_used", shared=True)],
            unit="{USD}",
            description="USD a client spent in its money budget's current period (day or "
            "month), shared by the replicas: alert on it over switchboard.client.budget.usd.limit.",
        )
        gauge(
            "switchboard.client.budget.usd.limit",
            callbacks=[self._observe("spend_limit", shared=True)],
            unit="{USD}",
            description="A client's money budget per period, in USD (auth.clients[].usd_per_day, "
            "usd_per_month).",
        )

    def _shared_state(self, meter: Meter) -> None:
        """Whether the replica reaches its shared state (Redis); absent on the memory backend.
        One store however many runtimes use it (a reload's old and new): `shared`."""
        meter.create_observable_gauge(
            "switchboard.state.degraded",
            callbacks=[self._observe("degraded", shared=True)],
            unit="1",
            description="1 while this replica cannot reach the shared state (Redis) and serves "
            "from its own local state (limits per replica, not across them); 0 when it can.",
        )
        meter.create_observable_counter(
            "switchboard.state.outages",
            callbacks=[self._observe("outages", shared=True)],
            unit="{outage}",
            description="Times this replica lost the shared state (Redis).",
        )
        meter.create_observable_counter(
            "switchboard.state.fallbacks",
            callbacks=[self._observe("fallbacks", shared=True)],
            unit="{operation}",
            description="State operations answered from this replica's local state because the "
            "shared state (Redis) was unreachable.",
        )

    def certificate(self, role: str, expires_at: float | None) -> None:
        """The certificate `role` now presents expires at `expires_at` (None: not known)."""
        if expires_at is None:
            self.certificates.pop(role, None)
        else:
            self.certificates[role] = expires_at

    def _observe_certificates(self, options: CallbackOptions) -> Iterable[Observation]:
        # Set from grpc's certificate fetcher thread too: a snapshot of the items.
        return [Observation(at, {TLS_ROLE: role}) for role, at in list(self.certificates.items())]

    def _observe_config(self, options: CallbackOptions) -> Iterable[Observation]:
        digest = self.config_digest
        return [] if digest is None else [Observation(1, {"switchboard.config.digest": digest})]

    def _observe(self, name: str, *, shared: bool = False) -> _Callback:
        """The views' values added up; `shared`: each view reports the same process-wide
        totals (runtimes that follow one another on one store), so the largest is taken."""

        def callback(options: CallbackOptions) -> Iterable[Observation]:
            totals: dict[Labels, float] = {}
            for view in list(self.views.values()):
                for labels, value in getattr(view, name).items():
                    before = totals.get(labels, 0)
                    totals[labels] = max(before, value) if shared else before + value
            return [Observation(value, dict(labels)) for labels, value in totals.items()]

        return callback
