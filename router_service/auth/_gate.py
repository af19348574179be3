"""The gate every guarded call passes: who is calling, may they call this method with this model,
is the request within bounds, are they within their limits. Transport-free: the gRPC interceptor
(`router_service/server/_interceptors.py`) feeds it and turns its errors into statuses."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from clients.switchboard.v1.router_service_pb2 import CreateRealtimeCallRequest, RealtimeRequest
from router_service.auth._audit import AuditEvent, AuditOutcome, audit
from router_service.auth._bounds import Bounds
from router_service.auth._budgets import Budgets, BudgetTicket, estimate_usd
from router_service.auth._callers import (
    AdminKeyOutOfScopeError,
    Authenticator,
    Caller,
    bearer_token,
)
from router_service.auth._issued import IssuedKeys, RealtimeGrant
from router_service.auth._limits import CallerLimits, RateStatus, RateTicket
from router_service.auth._methods import ROUTER_SERVICE, MethodRule
from router_service.auth._realtime_calls import bind_model
from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.config import AuthConfig, PriceConfig
from router_service.errors import (
    AuthenticationError,
    GuardrailBlockedError,
    ModelNotFoundError,
    PermissionDeniedError,
)
from router_service.guardrails import Guardrails, TextSlot, session_texts
from router_service.keys import fingerprint
from router_service.state import StateStore

__all__ = [
    "Admission",
    "Attempt",
    "Gate",
    "current_admission",
    "current_stream_admission",
    "set_current_admission",
]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call at the door, as the transport sees it."""

    method: str
    authorization: str | None
    peer: str
    forwarded_for: str | None = None
    request_id: str | None = None  # the caller's `x-request-id`, for its audit line


# What an ephemeral client secret may call: Realtime sessions, over a WebSocket or WebRTC.
_REALTIME = frozenset(
    ROUTER_SERVICE + method for method in ("Realtime", "CreateRealtimeCall", "HangupRealtimeCall")
)
# The requests that open one (with a secret: its session config goes up as their first event).
_SESSION_OPENINGS = (CreateRealtimeCallRequest, RealtimeRequest)

# The admitted call, for a handler that settles its tokens itself after the call returns (a
# background response: its job reports the usage when it finishes), or that renews its stream
# slot (a realtime session, which outlives the slot's TTL).
_ADMISSION: ContextVar[Admission | None] = ContextVar("switchboard_admission", default=None)


def current_admission(*, rpm: bool = False) -> Admission | None:
    """The admission of the call this context serves, when its tokens are counted (a tpm limit
    or a budget; with `rpm`, its rpm place too: what a refusal found later gives back) and not
    yet settled; None otherwise."""
    admission = _ADMISSION.get()
    counted = admission is not None and (admission.counted if rpm else admission.counts_tokens)
    return admission if counted else None


def current_stream_admission() -> Admission | None:
    """The admission of the call this context serves while it holds a stream slot."""
    admission = _ADMISSION.get()
    return admission if admission is not None and admission.holds_stream_slot else None


def set_current_admission(admission: Admission) -> None:
    _ADMISSION.set(admission)


class Admission:
    """A call that was let in: its caller, where it stands against its rpm and tpm
    (`rate_status`, None without either), the guardrails that redacted its request
    (`guardrails`), and the stream slot it holds until `close()`."""

    __slots__ = (
        "_budget",
        "_budgets",
        "_closed",
        "_limits",
        "_stream_lease",
        "_ticket",
        "caller",
        "guardrails",
        "rate_status",
    )

    def __init__(
        self,
        caller: Caller,
        limits: CallerLimits,
        ticket: RateTicket | None,
        stream_lease: str | None,
        budgets: Budgets,
        budget: BudgetTicket | None = None,
        rate_status: RateStatus | None = None,
        guardrails: tuple[str, ...] = (),
    ) -> None:
        self.caller = caller
        self.rate_status = rate_status
        self.guardrails = guardrails
        self._limits = limits
        self._ticket = ticket
        self._stream_lease = stream_lease
        self._budgets = budgets
        self._budget = budget
        self._closed = False

    @property
    def counts_tokens(self) -> bool:
        """Whether the call's tokens are counted (a tpm limit or a budget) and not yet settled."""
        ticket = self._ticket
        return (ticket is not None and ticket.tpm) or self._budget is not None

    @property
    def counted(self) -> bool:
        """Whether the call is counted anywhere (rpm, tpm or a budget), not yet settled: what
        `give_back` would un-count."""
        return self._ticket is not None or self._budget is not None

    @property
    def holds_stream_slot(self) -> bool:
        """Whether `close()` has a stream slot to give back."""
        return self._stream_lease is not None and not self._closed

    async def settle(
        self, used_tokens: int, cost_usd: float | None = None, *, at_least_estimate: bool = False
    ) -> None:
        """Correct the caller's tpm window and budgets with the tokens the call really used and
        what it cost (None: no price for the deployment that answered, nothing to count);
        `at_least_estimate`: `used_tokens` is only what was seen (a stream that reported no
        usage), so the estimate stays when it is more, and the money estimate grows with it."""
        ticket, self._ticket = self._ticket, None
        budget, self._budget = self._budget, None
        if ticket is not None:
            floor = ticket.estimate if at_least_estimate else 0
            await self._limits.settle(ticket, max(used_tokens, floor))
        if budget is not None:
            floor = budget.estimate if at_least_estimate else 0
            tokens = max(used_tokens, floor)
            usd = cost_usd or 0.0
            if at_least_estimate:  # no cost reported: the tokens seen at the estimate's rate
                usd = budget.estimate_usd * (tokens / budget.estimate if budget.estimate else 1)
            await self._budgets.settle(budget, tokens, usd)

    async def give_back(self, *, rpm: bool = True) -> None:
        """The call was refused as invalid (`refused_as_invalid`): it generated nothing, so its
        estimate in tpm and its budgets' estimate go back, and its place in rpm when it reached
        no upstream (not `rpm`: an upstream refused it, a call was made); once."""
        ticket, self._ticket = self._ticket, None
        budget, self._budget = self._budget, None
        await self._limits.give_back(ticket, rpm=rpm)
        if budget is not None:
            await self._budgets.settle(budget, 0, 0.0)

    async def renew_stream_slot(self, ttl_s: float) -> bool:
        """Keep the stream slot `ttl_s` more (a call that outlives the TTL it took it with);
        False when it is no longer held (given back, or expired first)."""
        if self._stream_lease is None or self._closed:
            return False
        return await self._limits.renew_stream(self.caller, self._stream_lease, ttl_s)

    async def close(self) -> None:
        """Give the stream slot back; idempotent."""
        if not self._closed:
            self._closed = True
            await self._limits.close_stream(self.caller, self._stream_lease)


class Gate:
    def __init__(
        self,
        config: AuthConfig,
        store: StateStore,
        *,
        max_tokens_ceiling: int,
        max_n: int = 8,
        max_rerank_documents: int = 1000,
        known_model: Callable[[str], bool],
        prices: Callable[[str], Sequence[PriceConfig]] = lambda model: (),
        clock: Clock = SYSTEM_CLOCK,
        guardrails: Guardrails | None = None,
        issued: IssuedKeys | None = None,
    ) -> None:
        self._guardrails = guardrails or None  # None: no rules, one check a call
        self._authenticator = Authenticator(config, clock=clock, issued=issued)
        self._audit_admitted = config.audit == "all"
        self._limits = CallerLimits(store, clock)
        self._budgets = Budgets(store, clock)
        self._bounds = Bounds(max_tokens_ceiling, max_n, max_rerank_documents)
        self._known_model = known_model
        self._prices = prices  # of the deployments a model name may route to

    @property
    def open(self) -> bool:
        """Whether callers without a known key are let in (`auth.open`)."""
        return self._authenticator.open

    def authenticate(self, attempt: Attempt, rule: MethodRule) -> Caller:
        """The caller, allowed this method's scope; audited either way."""
        key = bearer_token(attempt.authorization)
        try:
            caller = self._authenticator.identify(key)
        except AuthenticationError as exc:
            self._audit(attempt, "failure", key_fingerprint=_fingerprint(key), reason=exc.code)
            raise
        if caller.realtime_grant is not None and attempt.method not in _REALTIME:
            self._audit(attempt, "denied", client=caller.name, reason="ephemeral_key")
            raise PermissionDeniedError(
                "An ephemeral client secret opens Realtime sessions only.",
                code="ephemeral_key_realtime_only",
            )
        if rule.scope not in caller.scopes and "admin" in caller.scopes and not self.open:
            # No oracle of the admin key: an unknown key's answer, on its path (its fingerprint
            # hashed as one's); the truth in the audit line only.
            reason = f"scope:{rule.scope}:answered_as_unknown_key"
            fp = _fingerprint(key)
            self._audit(attempt, "denied", client=caller.name, key_fingerprint=fp, reason=reason)
            raise AdminKeyOutOfScopeError()
        self.check_scope(attempt, caller, rule)
        if not self._audit_admitted:  # `auth.audit: refusals`
            return caller
        if caller.anonymous:
            self._audit(attempt, "open", client=caller.name, key_fingerprint=_fingerprint(key))
        else:  # which of its keys: by fingerprint (and an issued key's label)
            self._audit(
                attempt,
                "success",
                client=caller.name,
                key_fingerprint=caller.key_fingerprint or None,
                key_label=caller.key_label or None,
            )
        return caller

    def check_scope(self, attempt: Attempt, caller: Caller, rule: MethodRule) -> None:
        """Refuse (audited) a caller without the method's scope: at its call, or at each line
        of its batch (a batch is made with the `chat` scope; its lines are other calls)."""
        if rule.scope not in caller.scopes:
            self._audit(attempt, "denied", client=caller.name, reason=f"scope:{rule.scope}")
            raise PermissionDeniedError(
                f"Client '{caller.name}' may not call {attempt.method.rsplit('/', 1)[-1]} "
                f"(needs the `{rule.scope}` scope).",
                code="missing_scope",
            )

    async def admit(
        self,
        attempt: Attempt,
        caller: Caller,
        rule: MethodRule,
        request: Any,
        *,
        stream_ttl_s: float | None = None,
    ) -> Admission:
        """Check the request and count it against the caller's limits; `stream_ttl_s` set: take
        a stream slot too. Raises InvalidRequestError (GuardrailBlockedError too),
        ModelNotFoundError, PermissionDeniedError or ClientRateLimitedError."""
        if caller.realtime_grant is not None:
            bind_model(caller, request)
        if rule.validate is not None:
            rule.validate(request, self._bounds)
        model = rule.model(request) if rule.model is not None else ""
        if model and not caller.may_use(model):
            if not self._known_model(model):
                raise ModelNotFoundError(model)
            self._audit(attempt, "denied", client=caller.name, reason=f"model:{model}")
            raise PermissionDeniedError(
                f"Client '{caller.name}' may not use the model `{model}`.",
                param="model",
                code="model_not_allowed",
            )
        # Before anything is counted: a blocked call takes no place in the caller's rpm window
        # nor budget, as no other invalid request does; a redacted one is counted as it goes up.
        # An ephemeral secret's session config too, as its session's first event: the caller
        # returned carries it screened (and redacted), for the handler.
        # (Not a hangup's: it sends no text, and a rule added since must not keep it from
        # ending the call.)
        redacted: tuple[str, ...] = ()
        grant = caller.realtime_grant
        if grant is not None and not isinstance(request, _SESSION_OPENINGS):
            grant = None
        if self._guardrails is not None and (rule.texts is not None or grant is not None):
            caller, redacted = self._screen(attempt, caller, rule, request, model, grant)
        lease = None
        if stream_ttl_s is not None:
            lease = await self._limits.open_stream(caller, stream_ttl_s)
        try:
            ticket, budget, status = None, None, None
            if rule.counted:
                tokens = 0
                # Estimated for a tpm limit or a budget only: the estimate reads every message.
                if rule.tokens is not None and (caller.tpm is not None or caller.budgeted):
                    tokens = rule.tokens(request)
                usd = self._estimate_usd(caller, rule, request, model, tokens)
                # The budget is checked first: a call it refuses takes no place in the rpm window.
                budget = await self._budgets.check(caller, tokens, usd)
                ticket, status = await self._limits.count(caller, tokens)
                await self._budgets.count(budget)
        except BaseException:
            await self._limits.close_stream(caller, lease)
            raise
        return Admission(
            caller, self._limits, ticket, lease, self._budgets, budget, status, redacted
        )

    def _screen(
        self,
        attempt: Attempt,
        caller: Caller,
        rule: MethodRule,
        request: Any,
        model: str,
        grant: RealtimeGrant | None,
    ) -> tuple[Caller, tuple[str, ...]]:
        """The request's texts through the guardrails (in place), and an ephemeral secret's
        session config (the caller returned has it redacted); audited when a rule blocks or
        redacts (by the rule's name, never the text)."""
        assert self._guardrails is not None
        client = "" if caller.anonymous else caller.name
        session = [] if grant is None else [grant.session_json]

        def write(changed: str) -> None:
            session[0] = changed

        try:
            texts: Iterable[TextSlot] = () if rule.texts is None else rule.texts(request)
            if grant is not None:
                texts = itertools.chain(texts, session_texts(session[0], write))
            redacted = self._guardrails.screen(texts, client, model, keeping=rule.keeps)
        except GuardrailBlockedError as exc:
            reason = f"guardrail:{exc.guardrail}:{exc.detector}"
            self._audit(attempt, "denied", client=caller.name, reason=reason)
            raise
        if redacted and self._audit_admitted:
            reason = "guardrail:" + ",".join(redacted)
            self._audit(attempt, "redacted", client=caller.name, reason=reason)
        if grant is not None and session[0] != grant.session_json:
            caller = replace(caller, realtime_grant=replace(grant, session_json=session[0]))
        return caller, redacted

    def _estimate_usd(
        self, caller: Caller, rule: MethodRule, request: Any, model: str, tokens: int
    ) -> float:
        """A money-budgeted call's estimate (its hosted tools' fees included); else 0 (no price)."""
        if not caller.spends:
            return 0.0
        prompt = rule.prompt(request) if rule.prompt is not None else None
        fees = rule.fees(request).usd if rule.fees is not None else None
        return estimate_usd(self._prices(model), tokens, prompt, fees)

    def _audit(
        self,
        attempt: Attempt,
        outcome: AuditOutcome,
        *,
        client: str | None = None,
        key_fingerprint: str | None = None,
        reason: str | None = None,
        key_label: str | None = None,
    ) -> None:
        audit(
            AuditEvent(
                outcome=outcome,
                method=attempt.method,
                peer=attempt.peer,
                client=client,
                key_fingerprint=key_fingerprint,
                key_label=key_label,
                forwarded_for=attempt.forwarded_for,
                request_id=attempt.request_id,
                reason=reason,
            )
        )


def _fingerprint(key: str | None) -> str | None:
    # An unknown or anonymous key's fingerprint; a known key's is its caller's, computed once at
    # load, so the common path hashes the key once (to identify it), not twice.
    return fingerprint(key) if key is not None else None
