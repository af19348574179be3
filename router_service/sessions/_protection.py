"""Thread protection: what a failure does to one conversation (DESIGN.md §4).

One function decides, from (outcome, the provider's level, whether the stream had started), the
actions; it is tested as a table, row by row. No provider names appear here: levels come from
each provider's config.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from router_service.outcomes import Outcome


class ThreadProtection(enum.Enum):
    PROVIDER_BAN = "provider-ban"
    MODEL_SKIP = "model-skip"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class ThreadActions:
    ban_provider: bool = False  # the session avoids the whole provider for the thread cooldown
    skip_deployment: bool = False  # the session avoids only this deployment
    clear_sticky: bool = False  # the session no longer sticks to this deployment

    @property
    def any(self) -> bool:
        return self.ban_provider or self.skip_deployment or self.clear_sticky


NONE = ThreadActions()

# Failures that belong to the deployment or its provider: they may hurt a conversation again.
_DEPLOYMENT_FAULTS = frozenset(
    {
        Outcome.UPSTREAM_ERROR,
        Outcome.CONNECT_FAILED,
        Outcome.FIRST_CHUNK_TIMEOUT,
        Outcome.STALLED,
        Outcome.TRUNCATED,
    }
)
# After the stream started the caller saw a broken answer: even a content refusal mid-stream is
# a reason to leave the deployment for this conversation.
_STARTED_FAULTS = _DEPLOYMENT_FAULTS | {Outcome.CONTENT_FILTERED}


def thread_actions(outcome: Outcome, level: ThreadProtection, started: bool) -> ThreadActions:
    faults = _STARTED_FAULTS if started else _DEPLOYMENT_FAULTS
    if outcome not in faults:
        return NONE  # successes, key trouble, the caller's own errors, cancellations
    if level is ThreadProtection.PROVIDER_BAN:
        return ThreadActions(ban_provider=True, clear_sticky=True)
    if level is ThreadProtection.MODEL_SKIP:
        return ThreadActions(skip_deployment=True, clear_sticky=True)
    return ThreadActions(clear_sticky=True)
