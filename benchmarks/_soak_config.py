"""The soak's router config and the fake upstream's fault rules (`python -m benchmarks.soak`):
clients with their limits and budgets, priced providers, faulty and cached models, short TTLs
so that state kept for a TTL reaches its steady size within a run."""

from __future__ import annotations

import hashlib
import json

from benchmarks._soak_load import CACHED_MODEL, EMBED_MODEL, SLOW_MODEL

__all__ = ["BAD_KEY", "BAD_KEY_RULE", "CACHED_MODELS", "CLIENTS", "SCENARIOS", "soak_config"]

# Client keys: name -> (key, config fields, share of the load).
CLIENTS: dict[str, tuple[str, str, float]] = {
    "soak-open": ("sk-soak-open", "usd_per_day: 1000", 5),  # a money budget it never reaches
    "soak-streams": ("sk-soak-streams", "rpm: 100000, max_concurrent_streams: 2", 3),
    "soak-limited": ("sk-soak-limited", "rpm: 60", 2),  # the load exceeds it
    # Meant to be spent within a minute or two (~$0.00005 a priced call), then refused (429).
    "soak-thrifty": ("sk-soak-thrifty", "usd_per_day: 0.02", 1),
    "soak-admin": ("sk-soak-admin", "scopes: [admin]", 0),  # the sampler's, and the admin calls'
}
# Models whose answers the response cache keeps (soak-mixed's are not: its faults stay faults).
CACHED_MODELS = (CACHED_MODEL, SLOW_MODEL, EMBED_MODEL)
BAD_KEY = "sk-alpha-bad"
# Three invalid-key answers: the request that disables the key and its first two probes; the
# third probe passes and the key serves again (half-open, then healthy).
BAD_KEY_RULE = {"key": BAD_KEY, "scenario": {"kind": "invalid_key_openai", "times": 3}}
SCENARIOS = f"""\
# Written by benchmarks/soak.py: the faults of the `alpha` deployments.
- {{model: rate-limited, scenario: {{kind: rate_limited, retry_after: 1}}}}
- {{model: unavailable, scenario: {{kind: server_error, status: 503}}}}
- {{model: stall-first, scenario: {{stall_before_first_byte: true, stall_before_ms: 3000}}}}
- {{model: stall-mid, scenario: {{stall_after_chunks: 3, chunks: 12}}}}
- {{model: truncated, scenario: {{truncate_after_chunks: 3, chunks: 12}}}}
- {{model: reset, scenario: {{reset_after_chunks: 2, chunks: 12}}}}
- {{model: slow, scenario: {{latency_ms: 400, chunk_interval_ms: 40, chunks: 30}}}}
- {json.dumps(BAD_KEY_RULE)}
"""


def _providers(upstream: str) -> str:
    """The config's providers: their keys, timeouts and prices."""
    return f"""\
providers:
  alpha:  # the faulty deployments, and a key that turns invalid now and then
    kind: openai
    base_url: {upstream}
    keys: [sk-alpha-1, sk-alpha-2, {BAD_KEY}]
    timeouts: {{connect_s: 2, first_chunk_s: 1, stall_s: 1, total_s: 3}}
    thread_protection: model-skip
    price: {{input_per_mtok: 2, output_per_mtok: 8}}
  beta:
    kind: openai
    base_url: {upstream}
    keys: [sk-beta-1, sk-beta-2]
    price: {{input_per_mtok: 1, output_per_mtok: 4, cached_input_per_mtok: 0.25}}
  gamma:
    kind: anthropic
    base_url: {upstream}
    keys: [sk-gamma-1]
    price: {{input_per_mtok: 3, output_per_mtok: 15}}
"""


def soak_config(upstream: str, router_port: int) -> str:
    clients = "\n".join(
        f"    - {{name: {name}, key_sha256: {hashlib.sha256(key.encode()).hexdigest()}"
        + (f", {fields}}}" if fields else "}")
        for name, (key, fields, _) in CLIENTS.items()
    )
    faults = ("rate-limited", "unavailable", "stall-first", "stall-mid", "truncated", "reset")
    deployments = "\n".join(f"      - {{provider: alpha, model: {m}}}" for m in (*faults, "ok"))
    cached = ", ".join(CACHED_MODELS)
    return f"""\
# Written by benchmarks/soak.py.
auth:
  clients:
{clients}
{_providers(upstream)}models:
  soak-mixed:
    strategy: weighted
    deployments:
{deployments}
      - {{provider: beta, model: ok, weight: 4}}
      - {{provider: gamma, model: ok, weight: 2}}
  soak-cached:  # the response cache's (`cache.models`), as soak-slow and soak-embed
    deployments:
      - {{provider: beta, model: ok}}
      - {{provider: gamma, model: ok}}
      - {{provider: alpha, model: truncated}}
  soak-slow:
    deployments: [{{provider: beta, model: slow}}]
  soak-embed:
    deployments:
      - {{provider: beta, model: embed, price: {{input_per_mtok: 0.02, output_per_mtok: 0}}}}
cache: {{enabled: true, ttl_s: 20, models: [{cached}]}}
conversations: {{ttl_s: 30}}
sessions: {{sticky_ttl_s: 30, thread_cooldown_s: 20, active_ttl_s: 60}}
cooldowns: {{transient_s: 2, rate_limit_backoff_s: 1}}
key_health:
  probe_initial_s: 2
  probe_max_s: 8
  probe_interval_s: 1
  backoff_max_s: 5
  provider_throttle_fraction: 1.0
server: {{host: 127.0.0.1, port: {router_port}}}
telemetry: {{log_format: text, state_interval_s: 2}}
"""
