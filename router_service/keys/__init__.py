"""Upstream key pools: leases, limits, health per key × model, recovery, fingerprints."""

from router_service.keys._denied import ModelDeniedError
from router_service.keys._fingerprint import digest_fingerprint, fingerprint
from router_service.keys._health import DisableReason, KeyHealth
from router_service.keys._lease import KeyLease, UpstreamKey
from router_service.keys._pool import KeyPool
from router_service.keys._prober import KeyProber, ProbeFn
from router_service.keys._refusal import FREED_SOON_S, Refusal, Unavailable
from router_service.keys._snapshot import KeySnapshot
from router_service.keys._succession import carry_renamed, carry_slots, take_over
from router_service.keys._whose import disabled_by_hand

__all__ = [
    "FREED_SOON_S",
    "DisableReason",
    "KeyHealth",
    "KeyLease",
    "KeyPool",
    "KeyProber",
    "KeySnapshot",
    "ModelDeniedError",
    "ProbeFn",
    "Refusal",
    "Unavailable",
    "UpstreamKey",
    "carry_renamed",
    "carry_slots",
    "digest_fingerprint",
    "disabled_by_hand",
    "fingerprint",
    "take_over",
]
