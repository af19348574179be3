"""The thread-protection decision table, row by row."""

from __future__ import annotations

import pytest

from router_service.outcomes import Outcome
from router_service.sessions import ThreadActions, ThreadProtection, thread_actions

BAN = ThreadActions(ban_provider=True, clear_sticky=True)
SKIP = ThreadActions(skip_deployment=True, clear_sticky=True)
UNSTICK = ThreadActions(clear_sticky=True)
NONE = ThreadActions()

FAULTS = [
    Outcome.UPSTREAM_ERROR,
    Outcome.CONNECT_FAILED,
    Outcome.FIRST_CHUNK_TIMEOUT,
    Outcome.STALLED,
    Outcome.TRUNCATED,
]
HARMLESS = [
    Outcome.OK,
    Outcome.RATE_LIMITED,
    Outcome.QUOTA_EXHAUSTED,
    Outcome.AUTH_INVALID,
    Outcome.BAD_REQUEST,
    Outcome.CONTEXT_TOO_LONG,
    Outcome.CANCELLED,
    Outcome.NO_CAPACITY,
    Outcome.MODEL_DENIED,  # the key's, for that model: another key or deployment serves
    Outcome.UNSUPPORTED_INPUT,  # the request's shape, not the deployment's health
]
LEVELS = {
    ThreadProtection.PROVIDER_BAN: BAN,
    ThreadProtection.MODEL_SKIP: SKIP,
    ThreadProtection.OFF: UNSTICK,
}

ROWS = (
    [
        (o, level, started, LEVELS[level])
        for o in FAULTS
        for level in LEVELS
        for started in (False, True)
    ]
    + [(o, level, started, NONE) for o in HARMLESS for level in LEVELS for started in (False, True)]
    # A content refusal before anything was shown is simply returned; after the stream started,
    # the conversation leaves that deployment.
    + [(Outcome.CONTENT_FILTERED, level, False, NONE) for level in LEVELS]
    + [(Outcome.CONTENT_FILTERED, level, True, LEVELS[level]) for level in LEVELS]
)


@pytest.mark.parametrize(("outcome", "level", "started", "expected"), ROWS)
def test_row(
    outcome: Outcome, level: ThreadProtection, started: bool, expected: ThreadActions
) -> None:
    assert thread_actions(outcome, level, started) == expected


def test_table_covers_every_outcome_level_and_phase() -> None:
    assert {(o, lv, st) for o, lv, st, _ in ROWS} == {
        (o, lv, st) for o in Outcome for lv in ThreadProtection for st in (False, True)
    }
