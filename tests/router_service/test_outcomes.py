"""The Outcome table, row by row (DESIGN.md §4)."""

from __future__ import annotations

import pytest

from router_service.outcomes import (
    REACTIONS,
    KeyAction,
    NextStep,
    Outcome,
    Scope,
    cools_deployment,
    counts_against,
)

ROWS = [
    # outcome, key action, cools deployment, next step, scope, counts against deployment
    (Outcome.OK, KeyAction.NONE, False, NextStep.RETURN, Scope.NONE, False),
    (
        Outcome.RATE_LIMITED,
        KeyAction.COOL_KEY_MODEL,
        False,
        NextStep.OTHER_KEY,
        Scope.KEY_MODEL,
        False,
    ),
    (
        Outcome.QUOTA_EXHAUSTED,
        KeyAction.DISABLE_KEY_LONG,
        False,
        NextStep.OTHER_KEY,
        Scope.KEY,
        False,
    ),
    (Outcome.AUTH_INVALID, KeyAction.DISABLE_KEY, False, NextStep.OTHER_KEY, Scope.KEY, False),
    (Outcome.BAD_REQUEST, KeyAction.NONE, False, NextStep.RETURN_ERROR, Scope.NONE, False),
    (Outcome.CONTEXT_TOO_LONG, KeyAction.NONE, False, NextStep.NEXT_CANDIDATE, Scope.NONE, False),
    (Outcome.CONTENT_FILTERED, KeyAction.NONE, False, NextStep.RETURN_ERROR, Scope.NONE, False),
    (Outcome.UPSTREAM_ERROR, KeyAction.NONE, True, NextStep.NEXT_CANDIDATE, Scope.DEPLOYMENT, True),
    (Outcome.CONNECT_FAILED, KeyAction.NONE, True, NextStep.NEXT_CANDIDATE, Scope.DEPLOYMENT, True),
    (
        Outcome.FIRST_CHUNK_TIMEOUT,
        KeyAction.NONE,
        True,
        NextStep.NEXT_CANDIDATE,
        Scope.DEPLOYMENT,
        True,
    ),
    (Outcome.STALLED, KeyAction.NONE, True, NextStep.RETURN_ERROR, Scope.DEPLOYMENT, True),
    (Outcome.TRUNCATED, KeyAction.NONE, False, NextStep.RETURN_ERROR, Scope.DEPLOYMENT, True),
    (Outcome.CANCELLED, KeyAction.NONE, False, NextStep.STOP, Scope.NONE, False),
    (Outcome.NO_CAPACITY, KeyAction.NONE, False, NextStep.NEXT_CANDIDATE, Scope.NONE, False),
    (
        Outcome.MODEL_DENIED,
        KeyAction.DISABLE_KEY_MODEL,
        False,
        NextStep.OTHER_KEY,
        Scope.KEY_MODEL,
        False,
    ),
    # Nothing was sent: no key, deployment or statistic pays; the next deployment may take it.
    (
        Outcome.UNSUPPORTED_INPUT,
        KeyAction.NONE,
        False,
        NextStep.NEXT_CANDIDATE,
        Scope.NONE,
        False,
    ),
]


@pytest.mark.parametrize(("outcome", "key", "cools", "step", "scope", "counts"), ROWS)
def test_row(
    outcome: Outcome, key: KeyAction, cools: bool, step: NextStep, scope: Scope, counts: bool
) -> None:
    reaction = REACTIONS[outcome]
    assert (
        reaction.key_action,
        reaction.cools_deployment,
        reaction.next_step,
        reaction.scope,
        reaction.counts_against_deployment,
    ) == (key, cools, step, scope, counts)


def test_every_outcome_has_a_row() -> None:
    assert {row[0] for row in ROWS} == set(Outcome) == set(REACTIONS)


def test_outcome_numbers_match_the_proto_enum() -> None:
    from clients.switchboard.v1 import routing_pb2

    for outcome in Outcome:
        assert routing_pb2.Outcome.Value(f"OUTCOME_{outcome.name}") == outcome.value


@pytest.mark.parametrize("outcome", list(Outcome))
def test_a_failure_of_no_ones_cools_no_deployment(outcome: Outcome) -> None:
    """Scope NONE (one answer's failure, a request larger than any key's budget) cools
    nothing; any other scope as the outcome's row says."""
    assert cools_deployment(outcome, Scope.NONE) is False
    assert cools_deployment(outcome) is REACTIONS[outcome].cools_deployment
    assert cools_deployment(outcome, Scope.DEPLOYMENT) is REACTIONS[outcome].cools_deployment


@pytest.mark.parametrize("outcome", list(Outcome))
def test_a_failure_of_no_ones_counts_against_no_deployment(outcome: Outcome) -> None:
    """Scope NONE is no failure of the deployment in the routing statistics either; any other
    scope counts as the outcome's row says."""
    assert counts_against(outcome, Scope.NONE) is False
    assert counts_against(outcome) is REACTIONS[outcome].counts_against_deployment
    assert counts_against(outcome, Scope.DEPLOYMENT) is REACTIONS[outcome].counts_against_deployment
