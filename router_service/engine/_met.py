"""What the attempt loop met on its way through a plan's candidates, and the one error the
caller gets when nothing answered."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from router_service.engine._held_back import (
    disabled_why,
    keys_disabled,
    only_held_back,
    serving_later,
)
from router_service.engine._model import Deployment, Plan, RequestContext
from router_service.engine._truncation import Shortening
from router_service.errors import (
    AllCandidatesFailedError,
    NoCapacityError,
    NoUsableKeyError,
    SwitchboardError,
    UpstreamFailure,
)
from router_service.keys import (
    FREED_SOON_S,
    ModelDeniedError,
    Refusal,
    Unavailable,
)
from router_service.outcomes import Outcome
from router_service.telemetry import record_refusal

# The failure that says a deployment cannot express the request (an adapter's cannot_express).
Inexpressible = Callable[[Deployment], UpstreamFailure | None]
_FREED_BY_CALLS = (Refusal.AT_LIMIT, Refusal.BUSY)
# Refusals of a pool whose keys may all be denied the model (`Met._denied` reads which).
_SET_ASIDE = (Refusal.UNHEALTHY, Refusal.DISABLED, Refusal.EXHAUSTED)


@dataclass(slots=True)
class Met:
    """What the walk through a plan's candidates met on its way: the last failure of an
    upstream, the deployments that cannot express the request, the refusals for want of a key."""

    cannot: Inexpressible | None = None
    last: tuple[UpstreamFailure, Deployment] | None = None
    unsupported: list[tuple[UpstreamFailure, Deployment]] = field(default_factory=list)
    refusals: list[Unavailable] = field(default_factory=list)
    refused_at: list[Deployment] = field(default_factory=list)  # each refusal's deployment
    blocked: list[Deployment] = field(default_factory=list)  # all their keys at their limits
    disabled: tuple[Deployment, ...] = ()  # all their keys disabled (none: no list to make)
    withheld: list[Deployment] = field(default_factory=list)  # cooled since the plan was made
    # Skipped by the session since the plan was made: asked once no other answered.
    last_resort: list[Deployment] = field(default_factory=list)
    window_floor: int | None = None
    # The deployments whose keys were refused or set aside for their model (MODEL_DENIED, or
    # cooling: perhaps for that), and whether any other met the walk (`_denied`).
    denied: list[Deployment] = field(default_factory=list)
    others: bool = False
    # Each upstream failure but UNSUPPORTED_INPUT's, in order (`last` is what they say); the
    # deployments met (or held back) that never serve, every key refused the model (`_denied`,
    # `_past_denied`): neither a failure nor a wait of theirs is the caller's.
    failures: tuple[tuple[UpstreamFailure, Deployment], ...] = ()  # (no list to make)
    gone: frozenset[str] = frozenset()
    # A blocked deployment's shortened retry its key's limits held back: where its queued walk
    # goes on (its refused tries are not sent again).
    held_retries: dict[str, Shortening] = field(default_factory=dict)

    def passes_over(self, ctx: RequestContext, deployment: Deployment) -> bool:
        if deployment.provider in ctx.banned_providers:
            return True  # this conversation just banned the provider
        # After a context-length failure only a larger window can help.
        floor = self.window_floor
        return floor is not None and (deployment.context_window or 0) <= floor

    def failed(self, failure: UpstreamFailure, deployment: Deployment) -> None:
        self._denial(deployment, failure.outcome is Outcome.MODEL_DENIED)
        if failure.outcome is Outcome.UNSUPPORTED_INPUT:
            self.unsupported.append((failure, deployment))
            return
        if failure.outcome is Outcome.CONTEXT_TOO_LONG:
            self.window_floor = deployment.context_window or 0
        self.failures += ((failure, deployment),)
        self.last = _said(self.last, failure, deployment)

    def met(
        self,
        walked: UpstreamFailure | Unavailable,
        deployment: Deployment,
        queued: bool = False,
        *,
        waited: bool = False,
        held: Shortening | None = None,
    ) -> None:
        """`queued`: the walk of the blocked deployment that waited; `waited`: one that waited
        on its own (a `truncation: auto` retry): neither is queued for again. `held`: the
        shortened retry `walked` held back, which its queued walk goes on with."""
        if isinstance(walked, UpstreamFailure):
            self.failed(walked, deployment)
            return
        self._denial(deployment, walked.reason in _SET_ASIDE)
        if not queued:
            record_refusal(deployment, walked)
            if walked.at_limit and not waited:
                self.blocked.append(deployment)
                if held is not None:
                    self.held_retries[deployment.name] = held
        if walked.reason is Refusal.DISABLED:
            self.disabled += (deployment,)
        self.refusals.append(walked)
        self.refused_at.append(deployment)

    def queued_for(self, ctx: RequestContext) -> Deployment | None:
        """The deployment whose keys were all at their limits that the request waits for: none
        once an upstream failed it (that failure says most), but for a context-length failure,
        which says only that a larger window is needed: a larger one waited for may answer."""
        if self.last is not None and self.last[0].outcome is not Outcome.CONTEXT_TOO_LONG:
            return None
        return next((d for d in self.blocked if not self.passes_over(ctx, d)), None)

    async def error(self, ctx: RequestContext, plan: Plan) -> SwitchboardError:
        """Why nothing answered. An upstream's own failure says most; a deployment that had no
        key free may serve a moment later; only when every deployment reached could not express
        the request, and none held back (cooling, excluded for the session) could, is it the
        caller's to change (INVALID_ARGUMENT, HTTP 400)."""
        if (denied := await self._denied(plan)) is not None:
            return denied
        if self.window_floor is not None or self.unsupported:
            await self._past_denied(plan)
        if self.last is not None:
            early = await self._larger_later(ctx, plan)
            if early is not None:
                return early
            failure, provider = self.last[0], self.last[1].provider
            held_back = await serving_later(ctx, plan, self._able(plan))
            later = None if held_back is None else held_back.retry_after_s
            return AllCandidatesFailedError(failure, provider, later)
        able = [d for d in self._able(plan) if d.name not in self.gone]
        if (waits := self._waits()) or not (self.unsupported or (able and self.gone)):
            # A deployment held back (cooling, the session's) serves later: no "every key
            # disabled" then, and its end is in the retry hint with the keys'.
            held_back = await serving_later(ctx, plan, able)
            return await no_key_free(waits or self.refusals, held_back, self.disabled)
        if able:  # beside the gone ones or the inexpressible: when the held-back ones serve
            return await only_held_back(ctx, plan, able)
        # An upstream's own refusal first, when there is one: a call was made (`upstream_refused`).
        answered = [(failure, d) for failure, d in self.unsupported if _answered(failure)]
        first, deployment = (answered or self.unsupported)[0]
        reasons = list(dict.fromkeys(failure.message for failure, _ in self.unsupported))
        if len(reasons) > 1:  # deployments of several kinds: each says what it lacks
            message = f"No deployment of `{ctx.requested_model}` takes this request: "
            message += "; ".join(reasons)
            error = {**(first.upstream_error or {}), "message": message}
            said = UpstreamFailure(
                first.outcome, message, upstream_status=first.upstream_status, upstream_error=error
            )  # an upstream's status kept: its 413 (the body over its limit) is the caller's
            stands_for, first = first, said
            first.__cause__ = stands_for  # not raised: what `upstream_refused` reads
        return AllCandidatesFailedError(first, deployment.provider)

    def _denial(self, deployment: Deployment, maybe: bool) -> None:
        if maybe:
            self.denied.append(deployment)
        else:
            self.others = True

    async def _denied(self, plan: Plan) -> ModelDeniedError | None:
        """Every deployment met, and each held back, refused its model on every key; those
        that did (`gone`) are no wait beside the others' refusals (`_waits`) or the held-back
        ones' (`_held_back`: every key disabled is their 503, not the denied keys' day)."""
        if self.others or not self.denied:
            return None
        every = [*self.denied, *self._able(plan)]
        self.gone = await _gone(every)
        return _denied_error(every) if all(d.name in self.gone for d in every) else None

    def _waits(self) -> list[Unavailable]:
        """The refusals but those of the deployments that never serve (`gone`): their keys'
        set-aside for the model is no wait (a day's), nor a key free soon."""
        met = zip(self.refusals, self.refused_at, strict=True)
        return [r for r, d in met if d.name not in self.gone]

    async def _past_denied(self, plan: Plan) -> None:
        """After a context-length failure, or beside deployments that cannot express the
        request (UNSUPPORTED_INPUT), the deployments met or held back every key of which was
        refused its model (MODEL_DENIED) never serve it: neither their failure nor their keys'
        day-long set-aside is the caller's answer, what the others say is (a larger one's 503,
        else the too-long failure; the caller's 400 or 413). Read from the pools only then (a
        failure's path)."""
        self.gone = gone = await _gone([*self.denied, *self._able(plan)])
        if self.last is not None and self.last[1].name in gone:
            self.last = None
            for failure, deployment in self.failures:  # the too-long one's said, whatever
                if deployment.name not in gone or failure.outcome is Outcome.CONTEXT_TOO_LONG:
                    self.last = _said(self.last, failure, deployment)

    async def _larger_later(self, ctx: RequestContext, plan: Plan) -> SwitchboardError | None:
        """After a context-length failure, the refusal when a larger deployment was not asked
        (no key free, cooling, the session's rules): the request is not too long, it is early,
        and the caller hears when to come back, not the smaller one's 400."""
        if self.last is None or self.last[0].outcome is not Outcome.CONTEXT_TOO_LONG:
            return None
        gone = self.gone
        larger = [d for d in self._able(plan) if not (self.passes_over(ctx, d) or d.name in gone)]
        refused = [
            (refusal, d)
            for refusal, d in zip(self.refusals, self.refused_at, strict=True)
            if not (self.passes_over(ctx, d) or d.name in gone)
        ]
        if not (larger or refused):
            return None
        held_back = await serving_later(ctx, plan, larger)
        if held_back is None and not refused:  # every key of each disabled
            return await keys_disabled(ctx, plan, larger)
        disabled = [d for refusal, d in refused if refusal.reason is Refusal.DISABLED]
        return await no_key_free([refusal for refusal, _ in refused], held_back, disabled)

    def _able(self, plan: Plan) -> list[Deployment]:
        """The deployments not asked (cooling, or excluded for the session) that could take the
        request."""
        held = self.withheld + [d for d in plan.held_back if d.name in plan.excluded]
        return [d for d in held if self.cannot is None or self.cannot(d) is None]


def _said(
    last: tuple[UpstreamFailure, Deployment] | None,
    failure: UpstreamFailure,
    deployment: Deployment,
) -> tuple[UpstreamFailure, Deployment]:
    """What the failures up to `failure` say: the latest, but a context-length failure after a
    larger deployment's own failure (retryable), which says more than "too long"."""
    larger = last is not None and (last[1].context_window or 0) > (deployment.context_window or 0)
    if failure.outcome is Outcome.CONTEXT_TOO_LONG and last is not None and larger:
        return last
    return (failure, deployment)


def _denied_error(deployments: Sequence[Deployment]) -> ModelDeniedError:
    """Every key of each of `deployments` was refused its model (MODEL_DENIED): no wait nor
    retry serves it. Their pools read only then (a failure's path: `_gone`)."""
    named = [f"provider `{d.provider}` may use `{d.upstream_model}`" for d in deployments]
    return ModelDeniedError(
        f"No key of {' nor of '.join(dict.fromkeys(named))} (each key's upstream refused "
        "it): an operator grants a key the model, then enables it "
        "(`switchboard admin keys enable`)."
    )


async def _gone(deployments: Sequence[Deployment]) -> frozenset[str]:
    """The names of `deployments` every key of which was refused its model."""
    return frozenset([d.name for d in dict.fromkeys(deployments) if await _denied_everywhere(d)])


async def _denied_everywhere(deployment: Deployment) -> bool:
    """Every key of `deployment` was refused its model (MODEL_DENIED: `KeyPool.unusable`)."""
    unusable = await deployment.pool.unusable(deployment.upstream_model)
    return unusable is not None and unusable.reason is Refusal.DENIED


def _hint(refusal: Unavailable) -> float | None:
    """When to come back: a rate window says; a key at its in-flight limit, or a provider at its
    `max_sessions`, frees when some call using it ends (here or on another replica), which
    nothing foretells: soon."""
    if refusal.retry_after_s is None and refusal.reason in _FREED_BY_CALLS:
        return FREED_SOON_S
    return refusal.retry_after_s


async def no_key_free(
    refusals: list[Unavailable],
    held_back: NoCapacityError | None = None,
    disabled: Sequence[Deployment] = (),
) -> NoCapacityError:
    """Every candidate refused before any call: the earliest hint says when to come back, a
    deployment `held_back` from the walk (`serving_later`: cooling, the session's) too. Every
    key disabled: `disabled`, the deployments that said so, say whose disables they are."""
    if held_back is None and refusals and all(r.reason is Refusal.DISABLED for r in refusals):
        why = await disabled_why(disabled)
        return NoUsableKeyError(f"Every key of every candidate deployment is {why}.")
    hints = [hint for hint in map(_hint, refusals) if hint is not None]
    if held_back is not None and held_back.retry_after_s is not None:
        hints.append(held_back.retry_after_s)
    if refusals and all(r.reason is Refusal.BUSY for r in refusals):
        message = (
            "Every candidate deployment's provider already serves its `max_sessions` "
            "conversations (thread_protection: provider-ban); try again shortly."
        )
    else:
        message = "No key of any candidate deployment is available now."
    if held_back is not None:
        message = f"{message} {held_back.message}"
    return NoCapacityError(
        message,
        retry_after_s=max(0.0, min(hints)) if hints else None,
    )


async def none_leased(
    ctx: RequestContext, plan: Plan, refusals: list[Unavailable], exclude: frozenset[str]
) -> SwitchboardError:
    """A PickRoute every candidate refused (`exclude`: the deployments the caller set aside),
    answered as a proxied call's: every key refused the model (no wait serves it), every key
    disabled (a 503), or when to come back."""
    held = [d for d in plan.held_back if d.name in plan.excluded and d.name not in exclude]
    asked = [d for d in plan.candidates if d.name not in exclude]  # each refused, in order
    if refusals and all(r.reason in _SET_ASIDE for r in refusals):
        gone = await _gone([*asked, *held])  # their keys' set-aside is no wait
        if all(d.name in gone for d in [*asked, *held]):
            return _denied_error([*asked, *held])
        kept = [(r, d) for r, d in zip(refusals, asked, strict=True) if d.name not in gone]
        refusals, asked = [r for r, _ in kept], [d for _, d in kept]
        held = [d for d in held if d.name not in gone]
        if not refusals:  # only the held-back ones may serve: when, or every key disabled
            return await only_held_back(ctx, plan, held)
    return await no_key_free(refusals, await serving_later(ctx, plan, held), asked)


def upstream_refused(error: BaseException) -> bool:
    """Whether a call refused as no deployment could express it (`refused_as_invalid`) was
    refused by an upstream it reached (a 404 at /rerank, the Responses API's 400 naming
    logprobs), not only passed over before a key was leased: a call was made, which the
    caller's rpm counts (its tokens go back all the same: nothing was generated)."""
    for raised in (error, error.__context__):
        if isinstance(raised, AllCandidatesFailedError):
            return _answered(raised.last)
    return False


def _answered(failure: BaseException | None) -> bool:
    """An upstream's answer (a status) is `failure` or what it stands for (its causes)."""
    while failure is not None:
        if isinstance(failure, UpstreamFailure) and failure.upstream_status:
            return True
        failure = failure.__cause__
    return False
