"""What one process remembers about each key's health, beside the shared deadlines: backoff
strikes per key × model, half-open recovery, the prober's schedule. Small and bounded: one entry
per configured key, and per key only the models that are currently failing."""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from router_service.config import KeyHealthConfig
from router_service.outcomes import Outcome

# Base of the exponential backoff after a 429 that gave no hint.
_BACKOFF_BASE_S = 1.0
# Doublings past this count no more (2**63 seconds is past any ceiling): a key × model keeps
# its strikes until a success, each 429 of its requests in flight one more, and a float made
# of 2**1024 raised OverflowError in every later report.
_MAX_DOUBLINGS = 63


# A key's why (`PoolNames.why_name`) once an operator enabled it: every replica's prober ends
# the key's half-open recovery there (the replica whose probe passed may not be the one asked).
ENABLED_BY_HAND = "enabled"
# A key's why once its calls proved it, half-open on one replica (`proved`): every replica's
# prober ends its own half-open recovery there too, or lifts the disable it still holds.
PROVED = "proved"


class DisableReason(enum.Enum):
    NONE = ""
    AUTH = "auth"
    QUOTA = "quota"
    MANUAL = "manual"


# The whys of the disables a prober brings back (credentials, quota): any replica probes them.
PROBED_WHYS = frozenset({DisableReason.AUTH.value, DisableReason.QUOTA.value})


@dataclass(slots=True)
class KeyHealth:
    last_used: int = 0  # order of last use within this process (0: never)
    credit: float = 0.0  # how far it is behind its weight's share of the calls (`by_share`)
    in_flight: int = 0  # this process's leases of the key not yet released
    last_outcome: Outcome | None = None
    # model -> consecutive 429s without a hint; cleared by a success.
    strikes: dict[str, int] = field(default_factory=dict)
    # model -> when a call last succeeded here: a 429 after it begins a new streak, whatever
    # the shared count other replicas' strikes left (`strike`).
    ok_at: dict[str, float] = field(default_factory=dict)
    disabled: DisableReason = DisableReason.NONE
    half_open_left: int = 0
    probe_backoff_s: float = 0.0
    next_probe_at: float = 0.0
    probe_failures: int = 0
    reported: bool = False  # backed off to the ceiling and still failing

    @property
    def half_open(self) -> bool:
        return self.half_open_left > 0

    def back_off(self, config: KeyHealthConfig) -> None:
        """Twice as long before the next probe (`probe_initial_s` at first), up to
        `probe_max_s`: a probe failed, or the key failed again while half-open."""
        doubled = max(config.probe_initial_s, self.probe_backoff_s * 2)
        self.probe_backoff_s = min(config.probe_max_s, doubled)


def jittered(seconds: float, rng: random.Random) -> float:
    """Full-range jitter around the value (0.5x to 1.5x), so replicas and keys do not align."""
    return seconds * (0.5 + rng.random())


def rate_limit_backoff(strikes: int, base_s: float, ceiling_s: float, rng: random.Random) -> float:
    """Exponential backoff with jitter for the n-th consecutive hint-less 429."""
    raw = max(base_s, _BACKOFF_BASE_S) * (2 ** min(max(0, strikes - 1), _MAX_DOUBLINGS))
    return min(ceiling_s, jittered(raw, rng))


def by_share(
    weights: Sequence[float], held: Sequence[int], health: Sequence[KeyHealth]
) -> list[int]:
    """Indices of usable keys in the order to try them: least in flight per weight, then the
    furthest behind its weight's share of the calls (a smooth weighted round robin: weights 3
    and 1 share calls 3:1 also when each ends before the next starts, with nothing in flight),
    then least recently used."""
    return sorted(
        range(len(weights)),
        key=lambda i: (
            held[i] / weights[i],
            -(health[i].credit + weights[i]),
            health[i].last_used,
        ),
    )


def credit_share(weights: Sequence[float], health: Sequence[KeyHealth], granted: int) -> None:
    """Of the usable keys, the `granted`-th was leased: each earns its weight, it pays their
    sum. Bounded both ways: a key left out meanwhile (at its limit, in flight) catches up by one
    round at most, and the keys that served instead owe no more than one round for it."""
    total = sum(weights)
    for weight, each in zip(weights, health, strict=True):
        each.credit = min(total, each.credit + weight)
    health[granted].credit = max(-total, health[granted].credit - total)
