"""Which failed calls give their estimate back (`refused_as_invalid`): those refused for the
request itself, told by the error a handler ends with — never one that only met a refusal on its
way (an InvalidRequestError caught and handled before its upstream failed), nor a guardrail's
block of an answer."""

from __future__ import annotations

import grpc
import pytest

from router_service.errors import (
    AllCandidatesFailedError,
    GuardrailBlockedError,
    InvalidRequestError,
    UpstreamFailure,
)
from router_service.outcomes import Outcome
from router_service.server._used import refused_as_invalid


def _aborted(error: Exception) -> grpc.aio.AbortError:
    """What a servicer's error boundary ends a call with: the abort, raised in its `except`."""
    try:
        raise error
    except Exception:
        try:
            raise grpc.aio.AbortError()
        except grpc.aio.AbortError as abort:
            return abort


def _upstream_failed() -> AllCandidatesFailedError:
    return AllCandidatesFailedError(UpstreamFailure(Outcome.UPSTREAM_ERROR, "HTTP 500"), "p")


def _failed_after_a_handled_refusal() -> AllCandidatesFailedError:
    """A handler that caught a validation error, went on (a malformed extra read as absent) and
    then met an upstream failure: its error says nothing of the refusal it handled."""
    try:
        raise InvalidRequestError("`reasoning` must be an object.", param="reasoning")
    except InvalidRequestError:
        pass  # handled: read as absent
    try:
        raise _upstream_failed()
    except AllCandidatesFailedError as failed:
        return failed


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (InvalidRequestError("`messages` is required."), True),
        (_aborted(InvalidRequestError("`messages` is required.")), True),
        # No deployment can express it: passed over before any key was leased.
        (
            _aborted(
                AllCandidatesFailedError(UpstreamFailure(Outcome.UNSUPPORTED_INPUT, "stop"), "p")
            ),
            True,
        ),
        (_aborted(_upstream_failed()), False),
        (_failed_after_a_handled_refusal(), False),
        (_aborted(_failed_after_a_handled_refusal()), False),
        # The answer's guardrails blocked it: the upstream answered (and was paid).
        (_aborted(GuardrailBlockedError("rule", "detector", param="text", answer=True)), False),
    ],
)
def test_refused_as_invalid(error: BaseException, refused: bool) -> None:
    assert refused_as_invalid(error) is refused
