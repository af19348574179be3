"""The Outcome taxonomy and the one table of reactions to it (DESIGN.md §4).

Every upstream attempt is classified into exactly one Outcome; `REACTIONS` says, in one place, what
that does to the key, the deployment, and the request's next step. The executor never branches on
status codes or provider names: it looks the outcome up here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Scope(enum.Enum):
    """What a failure belongs to, and so what is cooled: never more than that."""

    NONE = "none"
    KEY = "key"  # the key, for every model (credentials)
    KEY_MODEL = "key_model"  # the key, for this upstream model only
    PROVIDER = "provider"  # account- or IP-level throttling
    DEPLOYMENT = "deployment"  # provider + model, for everyone


class KeyAction(enum.Enum):
    NONE = "none"
    COOL_KEY_MODEL = "cool_key_model"  # for Retry-After, else backoff
    DISABLE_KEY_LONG = "disable_key_long"  # quota / billing: a long window
    DISABLE_KEY = "disable_key"  # credentials: until a probe succeeds
    DISABLE_KEY_MODEL = "disable_key_model"  # this model is not this key's: a long window


class NextStep(enum.Enum):
    RETURN = "return"  # success: answer the caller
    OTHER_KEY = "other_key"  # same deployment, another key of the same provider
    NEXT_CANDIDATE = "next_candidate"
    RETURN_ERROR = "return_error"  # the caller's fault: pass the upstream error through
    STOP = "stop"  # the caller went away


class Outcome(enum.Enum):
    OK = 1
    RATE_LIMITED = 2
    QUOTA_EXHAUSTED = 3
    AUTH_INVALID = 4
    BAD_REQUEST = 5
    CONTEXT_TOO_LONG = 6
    CONTENT_FILTERED = 7
    UPSTREAM_ERROR = 8
    CONNECT_FAILED = 9
    FIRST_CHUNK_TIMEOUT = 10
    STALLED = 11
    TRUNCATED = 12
    CANCELLED = 13
    NO_CAPACITY = 14
    MODEL_DENIED = 15
    # The deployment's provider cannot express the request (a content kind it does not take).
    # Unlike BAD_REQUEST, which is the upstream's verdict on the request itself, this is only
    # this deployment's: another of the group may take it (see AttemptRunner.run).
    UNSUPPORTED_INPUT = 16

    @property
    def default_scope(self) -> Scope:
        return REACTIONS[self].scope


@dataclass(frozen=True, slots=True)
class Reaction:
    key_action: KeyAction
    cools_deployment: bool  # a transient, global cooldown of the deployment
    next_step: NextStep
    scope: Scope
    # Whether the outcome counts against the deployment in routing statistics (a key's own trouble
    # does not: another key of the same provider may still serve).
    counts_against_deployment: bool


_R = Reaction
REACTIONS: dict[Outcome, Reaction] = {
    Outcome.OK: _R(KeyAction.NONE, False, NextStep.RETURN, Scope.NONE, False),
    Outcome.RATE_LIMITED: _R(
        KeyAction.COOL_KEY_MODEL, False, NextStep.OTHER_KEY, Scope.KEY_MODEL, False
    ),
    Outcome.QUOTA_EXHAUSTED: _R(
        KeyAction.DISABLE_KEY_LONG, False, NextStep.OTHER_KEY, Scope.KEY, False
    ),
    Outcome.AUTH_INVALID: _R(KeyAction.DISABLE_KEY, False, NextStep.OTHER_KEY, Scope.KEY, False),
    Outcome.BAD_REQUEST: _R(KeyAction.NONE, False, NextStep.RETURN_ERROR, Scope.NONE, False),
    Outcome.CONTEXT_TOO_LONG: _R(KeyAction.NONE, False, NextStep.NEXT_CANDIDATE, Scope.NONE, False),
    Outcome.CONTENT_FILTERED: _R(KeyAction.NONE, False, NextStep.RETURN_ERROR, Scope.NONE, False),
    Outcome.UPSTREAM_ERROR: _R(
        KeyAction.NONE, True, NextStep.NEXT_CANDIDATE, Scope.DEPLOYMENT, True
    ),
    Outcome.CONNECT_FAILED: _R(
        KeyAction.NONE, True, NextStep.NEXT_CANDIDATE, Scope.DEPLOYMENT, True
    ),
    Outcome.FIRST_CHUNK_TIMEOUT: _R(
        KeyAction.NONE, True, NextStep.NEXT_CANDIDATE, Scope.DEPLOYMENT, True
    ),
    Outcome.STALLED: _R(KeyAction.NONE, True, NextStep.RETURN_ERROR, Scope.DEPLOYMENT, True),
    Outcome.TRUNCATED: _R(KeyAction.NONE, False, NextStep.RETURN_ERROR, Scope.DEPLOYMENT, True),
    Outcome.CANCELLED: _R(KeyAction.NONE, False, NextStep.STOP, Scope.NONE, False),
    Outcome.NO_CAPACITY: _R(KeyAction.NONE, False, NextStep.NEXT_CANDIDATE, Scope.NONE, False),
    Outcome.MODEL_DENIED: _R(
        KeyAction.DISABLE_KEY_MODEL, False, NextStep.OTHER_KEY, Scope.KEY_MODEL, False
    ),
    Outcome.UNSUPPORTED_INPUT: _R(
        KeyAction.NONE, False, NextStep.NEXT_CANDIDATE, Scope.NONE, False
    ),
}


def reaction_for(outcome: Outcome) -> Reaction:
    return REACTIONS[outcome]


def key_action(outcome: Outcome, scope: Scope | None = None) -> KeyAction:
    """What `outcome` does to the key; nothing for a failure whose `scope` is no one's (OpenAI's
    429 for a request larger than the key's whole tpm budget: it serves smaller ones)."""
    return KeyAction.NONE if scope is Scope.NONE else REACTIONS[outcome].key_action


def cools_deployment(outcome: Outcome, scope: Scope | None = None) -> bool:
    """Whether `outcome` cools its deployment for everyone; not for a failure of no one's
    (`scope` NONE): one answer's failure (a generation that errored mid-way, which the upstream
    itself calls request-level) is this request's to retry elsewhere, not everyone's to avoid."""
    return scope is not Scope.NONE and REACTIONS[outcome].cools_deployment


def counts_against(outcome: Outcome, scope: Scope | None = None) -> bool:
    """Whether `outcome` is a failure of its deployment in the routing statistics; not one of no
    one's (`scope` NONE), which cools nothing either: one answer's failure (a generation that
    errored mid-way, a malformed tool call) says nothing of how the deployment serves the next
    request, and a healthy deployment is not to look unhealthy for it."""
    return scope is not Scope.NONE and REACTIONS[outcome].counts_against_deployment


def read_nothing(outcome: Outcome, scope: Scope | None = None) -> bool:
    """Whether an upstream refused a request without reading it, so that the tokens it was
    estimated at are not the key's (taken out of its tpm window again): past the model's
    context window; larger than the key's whole tpm budget (a rate limit of no key's, `scope`
    NONE); or an input this deployment cannot take (UNSUPPORTED_INPUT: a body over its size
    limit, its 413; a field it refuses)."""
    if outcome is Outcome.RATE_LIMITED:
        return scope is Scope.NONE
    return outcome in (Outcome.CONTEXT_TOO_LONG, Outcome.UNSUPPORTED_INPUT)
