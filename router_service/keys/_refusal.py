"""Why a pool could not lease a key right now."""

from __future__ import annotations

import enum
from dataclasses import dataclass

# The retry hint of a key at its in-flight limit (or a provider at its `max_sessions`): it frees
# when some call using it ends, here or on another replica, which nothing foretells: soon.
FREED_SOON_S = 1.0


class Refusal(enum.Enum):
    EXHAUSTED = "exhausted"  # every key was already tried by this request
    UNHEALTHY = "unhealthy"  # cooling, or the provider is throttled
    DISABLED = "disabled"  # every key disabled (credentials, quota) until a probe or its window
    AT_LIMIT = "at_limit"  # usable keys, all at their in-flight or rate limits
    # Every key's upstream refused the model (MODEL_DENIED): no wait helps (`keys/_denied.py`)
    DENIED = "denied"
    # Not the keys: the provider (provider-ban) already serves its `max_sessions` conversations
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class Unavailable:
    reason: Refusal
    retry_after_s: float | None = None

    @property
    def at_limit(self) -> bool:
        return self.reason is Refusal.AT_LIMIT
