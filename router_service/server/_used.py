"""What an admitted call used, for its caller's tpm and budgets: its reported usage or what it
relayed (`Used`), or nothing at all when it was refused for the request itself
(`refused_as_invalid`, `give_back_if_refused`). The interceptor settles a call with them as it
ends; a background response's job and a batch's lines, which run past their RPC, too."""

from __future__ import annotations

import logging
from typing import Any

from clients import InvalidRequestError as CodecInvalidRequestError
from router_service.auth import Admission, MethodRule
from router_service.cancellation import uncut
from router_service.engine import upstream_refused
from router_service.errors import (
    AllCandidatesFailedError,
    GuardrailBlockedError,
    InvalidRequestError,
    ModelNotFoundError,
)
from router_service.outcomes import Outcome

__all__ = [
    "SETTLING_FAILED",
    "Used",
    "give_back_if_refused",
    "give_back_start",
    "give_slot_back",
    "refused_as_invalid",
    "settle_logged",
]

log = logging.getLogger("switchboard.router")

SETTLING_FAILED = "settling a call's tokens failed (its estimate stays counted)"


class Used:
    """The tokens a call used: its reported usage (a stream's summary), else what it was seen
    to relay. Without a report the estimate stays counted when more (the caller may have left
    while the upstream still wrote), and what was relayed past it counts: a call whose upstream
    reports no usage (a server that sends none, a stream of a provider with `stream_usage:
    false` whose caller did not ask) cannot take more than its estimate (256 output tokens
    when no `max_tokens`) unseen. An answer from the response cache used none: its estimate is
    given back whole, as is that of a call refused as invalid before it sent anything
    (`refuse`)."""

    __slots__ = ("_cached", "_cost", "_refused", "_relayed", "_reported", "_request", "_rule")

    def __init__(self, rule: MethodRule, request: Any) -> None:
        self._rule = rule
        self._request = request
        self._reported = 0
        self._cost: float | None = None  # what the reporting message says it cost, if priced
        self._relayed = 0
        self._cached = False
        self._refused: bool | None = None  # refused as invalid: whether its rpm place goes back

    def see(self, message: Any) -> None:
        if self._rule.cached is not None and self._rule.cached(message):
            self._cached = True
        # A negative report (a buggy compatible server) is none: it would give tokens back.
        if self._rule.usage is not None and (reported := self._rule.usage(message)) > 0:
            self._reported = reported
            if self._rule.cost is not None:  # the cost comes with the usage, once a call
                self._cost = self._rule.cost(message)
        if self._rule.relayed is not None:
            self._relayed += self._rule.relayed(message)

    def refuse(self, error: BaseException) -> None:
        """The handler refused the call as invalid (`refused_as_invalid`, `error`): it used
        nothing, unless it had relayed or reported something first; an upstream's refusal
        (`upstream_refused`) keeps its rpm place."""
        self._refused = not upstream_refused(error)

    async def settle(self, admission: Admission) -> None:
        """Settle `admission` with what the call used. A failure (the state store lost) is
        logged, not raised: the call's answer (or its own error) is what its caller is owed,
        and the estimate stays counted, as for a call that never reported."""
        try:
            await self._settle(admission)
        except Exception:
            log.warning(SETTLING_FAILED, exc_info=True)

    async def _settle(self, admission: Admission) -> None:
        if self._cached:
            await admission.settle(0)
        elif self._refused is not None and not self._reported and not self._relayed:
            await admission.give_back(rpm=self._refused)  # its rpm place too, if no call made
        elif self._reported:
            await admission.settle(self._reported, self._cost)
        elif self._relayed and self._rule.prompt is not None:
            seen = self._rule.prompt(self._request) + self._relayed
            await admission.settle(seen, at_least_estimate=True)


def refused_as_invalid(error: BaseException) -> bool:
    """Whether a handler refused its call for the request itself (InvalidRequestError, the
    router's or the codec's: raised, or the abort a servicer answers it with from its `except`,
    whose context it is). Such a call reached no upstream, so it is not counted in the caller's
    tpm or budgets, as the gate counts no invalid request. Not a guardrail's block of an answer
    (GuardrailBlockedError; a request's is the gate's, before counting): that upstream answered.
    The 400 of a request no deployment can express is one too (AllCandidatesFailedError whose
    last failure is UNSUPPORTED_INPUT, only ever so when nothing else was met, `Met.error`: each
    was passed over before a key was leased, or refused it with a 400 that generated nothing).
    So is an unknown model (ModelNotFoundError, the planner's: no upstream was chosen)."""
    for raised in (error, error.__context__):
        if isinstance(raised, ModelNotFoundError):
            return True
        if isinstance(raised, InvalidRequestError | CodecInvalidRequestError):
            return not isinstance(raised, GuardrailBlockedError)
        if isinstance(raised, AllCandidatesFailedError):
            return raised.last.outcome is Outcome.UNSUPPORTED_INPUT
    return False


async def give_back_if_refused(admission: Admission | None, error: BaseException) -> bool:
    """Give a call's estimate and rpm place back when `error` refused it as invalid
    (`refused_as_invalid`; its rpm place stays when an upstream refused it: a call was made);
    whether it did. Only for a call that relayed nothing first. A give-back that fails (the
    state store lost) is logged, not raised: `error` is what the caller is owed (a background
    job's task would have ended on the store's error, its response left `in_progress`)."""
    if admission is None or not admission.counted or not refused_as_invalid(error):
        return False
    return await give_back_start(admission, rpm=not upstream_refused(error))


async def settle_logged(admission: Admission, used_tokens: int, cost_usd: float | None) -> None:
    """`admission.settle` once a call answered (a background job's, a Realtime session's);
    a failure (the state store lost) logged, not raised, as `Used.settle`'s."""
    try:
        await admission.settle(used_tokens, cost_usd)
    except Exception:
        log.warning(SETTLING_FAILED, exc_info=True)


async def give_slot_back(admission: Admission) -> None:
    """`admission.close` as a call ends: a failed give-back (the state store lost) is logged,
    not raised, the call having told its caller all it had; the slot expires by its TTL."""
    try:
        await admission.close()
    except Exception:
        log.warning("giving a stream slot back failed", exc_info=True)


async def give_back_start(admission: Admission, *, rpm: bool) -> bool:
    """Give back what a call's start counted (`Admission.give_back`), whatever cancels the
    caller meanwhile; whether it did. A failure (the state store lost) is logged, not raised:
    the call's own error is what its caller is owed."""
    try:
        await uncut(admission.give_back(rpm=rpm))
    except Exception:
        log.warning("giving a refused call's start back failed (it stays counted)", exc_info=True)
        return False
    return True
