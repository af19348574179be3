"""The router's spans: one per request (`_request.py`), one per upstream attempt (here), and the
metrics they close with.

    RouterService/Chat          SERVER    the call, and the request: planning, every attempt,
    │                                     the whole stream (`served_call`, `_request.py`)
    ├── chat model-a            CLIENT    attempt 1 (deployment, key fingerprint, outcome) and
    │                                     its upstream HTTP call (method, URL, status code)
    └── chat model-b            CLIENT    attempt 2 …

A request run outside its call's own task (a background response) or a call's second request
(several prompts sent together) has an INTERNAL `chat <model>` span of its own instead. In one
process (`switchboard serve`) the edge's HTTP SERVER span is the request's span, and the attempts
its children.

The attempt's span is the CLIENT span of the HTTP call it makes (GenAI's inference span is the
call's span): the adapters mark that request (`ATTEMPT_CALL`), and the tracing transport records
it on the attempt's span it claims (`claim_call`), once an attempt. When that call is refused
(an error status) and the attempt asks again (a retry without parameters the upstream refused),
the refused call becomes a failed CLIENT span of its own and the attempt's span records the new
call: a failed call is always marked failed somewhere, and the attempt's status code is that of
its last call. Any other request in it (a token exchange, another piece of a split embeddings
request) has a CLIENT span of its own under the attempt, as every upstream request has with
`telemetry.upstream_http_spans` (`_httpx.py`).

A stream's attempt span is ended by the end of the attempt that holds the stream (`end_later`), so
it ends when the stream ends — normally, by stall, by error or by cancellation. Attribute building
sits behind `span.is_recording()`; with tracing off the span is the API's invalid span.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple

from opentelemetry import context, trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from clients.switchboard.v1 import router_service_pb2, routing_pb2
from router_service.telemetry import _attributes as attr
from router_service.telemetry._current import current_span
from router_service.telemetry._served import status_message
from router_service.telemetry._state import Telemetry, current

if TYPE_CHECKING:
    from contextvars import Token

    from router_service.engine import Deployment, RequestContext
    from router_service.keys import KeyLease
    from router_service.telemetry._request import RequestSpan

__all__ = [
    "ATTEMPT_CALL",
    "AttemptHandle",
    "AttemptSpan",
    "RequestHandle",
    "attempt_span",
    "claim_call",
    "refuse_call",
    "span_for",
]

CANCELLED = (asyncio.CancelledError, GeneratorExit)
OK = routing_pb2.OUTCOME_OK
# Open requests and attempts, so an attempt knows its request and a reaction its attempt.
open_requests: dict[int, RequestSpan] = {}
open_attempts: dict[int, AttemptSpan] = {}
# The `httpx.Request.extensions` key that marks a request as the call an attempt makes.
ATTEMPT_CALL = "switchboard.attempt_call"
# The recording spans of attempts under way whose call is not claimed yet, by the span's id.
_unclaimed: dict[int, Span] = {}


class RefusedCall(NamedTuple):
    """An attempt's call the upstream answered with an error status: what its own span needs,
    should the attempt ask again."""

    attributes: dict[str, str | int]
    status: int
    started_ns: int


# Attempts under way whose last call was refused, by the span's id (`refused_call`).
_refused: dict[int, RefusedCall] = {}


def outcome_name(value: routing_pb2.Outcome.ValueType) -> str:
    return routing_pb2.Outcome.Name(value).removeprefix("OUTCOME_")


def error_type(exc: BaseException) -> str:
    """The outcome (or error reason) an exception stands for."""
    last = getattr(exc, "last", None)  # AllCandidatesFailedError: its last failure decides
    outcome = getattr(last if last is not None else exc, "outcome", None)
    if outcome is not None:
        return str(outcome.name)
    return str(getattr(exc, "reason", None) or type(exc).__name__)


def cancelled_by(ctx: RequestContext) -> str:
    """Why a request (an attempt) was cancelled while it ran: its caller's deadline passed
    (gRPC cancels such a call as one whose caller left), or its caller left."""
    return (
        "the caller's deadline passed" if ctx.cancelled_at_deadline() else "cancelled by the caller"
    )


def fail(span: Span, kind: str, message: str) -> None:
    """Mark `span` failed: `error.type` and an error status saying what happened."""
    span.set_attribute(attr.ERROR_TYPE, kind)
    span.set_status(Status(StatusCode.ERROR, status_message(kind, message)))


class Activated:
    """Makes its span current between `__enter__` and `__exit__` (only when it records)."""

    span: Span = INVALID_SPAN
    _token: Token[context.Context] | None = None

    def _activate(self) -> None:
        if self.span.is_recording():
            self._token = context.attach(trace.set_span_in_context(self.span))

    def _deactivate(self) -> None:
        if self._token is not None:
            context.detach(self._token)
            self._token = None


class RequestHandle:
    """What the servicer holds for one request. This base does nothing: it is what a request
    gets when telemetry is off entirely (no tracing, no metrics), so that costs nothing."""

    def __enter__(self) -> RequestHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def observe(self, event: router_service_pb2.ChatStreamResponse) -> None:
        """One stream event on its way to the caller."""

    def observe_media(self, event: router_service_pb2.MediaStreamResponse) -> None:
        """One media stream event on its way to the caller (its summary, its error)."""

    def respond(self, response: router_service_pb2.ChatResponse) -> None:
        """The unary chat answer (its completion, and its route: what it cost)."""

    def respond_embeddings(self, response: router_service_pb2.EmbedResponse) -> None:
        """The embeddings answer."""

    def respond_media(self, response: router_service_pb2.MediaResponse) -> None:
        """A moderation, image, speech, transcription or translation answer."""

    def cache(self, result: str) -> None:
        """What the response cache did: "hit", "miss", "bypass"; "" when it does not apply."""

    def failed(self, outcome: str) -> None:
        """The request failed without an exception reaching its end (an `Outcome`'s name: a
        realtime call's sideband that broke, while the call goes on): its outcome label."""


class AttemptHandle:
    """What the attempt loop holds for one attempt; this base (telemetry off) does nothing."""

    def __enter__(self) -> AttemptHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def end_later(self) -> Callable[[BaseException | None], None] | None:
        """Not ended by its `with` block: by the returned function, which its attempt's end
        calls (a successful attempt lasts as long as what it holds, a stream)."""
        return None


OFF_REQUEST = RequestHandle()
_OFF_ATTEMPT = AttemptHandle()


class AttemptSpan(AttemptHandle, Activated):
    """One upstream attempt: `with attempt_span(...) as span:` around the attempt; a successful
    attempt whose stack holds a stream has its end call `end_later()`'s function."""

    def __init__(
        self, telemetry: Telemetry, ctx: RequestContext, deployment: Deployment, lease: KeyLease
    ) -> None:
        self._t = telemetry
        self._ctx = ctx
        self._deployment = deployment
        self._lease_id = id(lease)
        self._fingerprint = lease.key.fingerprint
        self._first = len(ctx.attempts)
        self._held = False
        self._started = time.perf_counter()
        request = open_requests.get(id(ctx))
        self.operation = request.operation if request is not None else "chat"
        if request is not None:
            request.attempts += 1
        if telemetry.tracing:
            self.span = telemetry.tracer.start_span(
                f"{self.operation} {deployment.upstream_model}", kind=SpanKind.CLIENT
            )
            if self.span.is_recording():  # a sampled-out request builds no attributes
                self.span.set_attributes(self._start_attributes(request.attempts if request else 1))

    def _start_attributes(self, index: int) -> attr.Attributes:
        d = self._deployment
        started: attr.Attributes = {
            attr.OPERATION: self.operation,
            attr.PROVIDER_NAME: attr.provider_name(d.adapter.kind),
            attr.REQUEST_MODEL: d.upstream_model,
            attr.PROVIDER: d.provider,
            attr.DEPLOYMENT: d.name,
            attr.KEY_FINGERPRINT: self._fingerprint,
            attr.ATTEMPT_INDEX: index,
            **attr.server_attributes(d.adapter.config.base_url),
        }
        plan = self._ctx.plan
        # Which step of the plan (its event on the request span, this span's parent) it is: a
        # key retry is the same step, a fallback the next. Deployments compare by identity.
        if plan is not None and d in plan.candidates:
            started[attr.PLAN_STEP] = plan.candidates.index(d) + 1
        return started

    def __enter__(self) -> AttemptSpan:
        open_attempts[self._lease_id] = self
        self._activate()
        if self._token is not None:  # recording, and current: its call can claim it
            _unclaimed[id(self.span)] = self.span
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _unclaimed.pop(id(self.span), None)
        _refused.pop(id(self.span), None)
        self._deactivate()
        if not self._held:
            self._end(exc)

    def end_later(self) -> Callable[[BaseException | None], None]:
        """Ended by the attempt's end, after everything the attempt holds (for a stream, the
        upstream response, hence its HTTP span) is released: its stack's first callback. Not
        a stack of its own around the attempt's (`pop_all`: ~0.85 KiB a stream)."""
        self._held = True
        return self._end

    def _end(self, exc: BaseException | None) -> None:
        open_attempts.pop(self._lease_id, None)
        recorded = self._ctx.attempts[self._first :]
        last = recorded[-1] if recorded else None
        if isinstance(exc, CANCELLED) and (last is None or last.outcome == OK):
            outcome, status, detail = "CANCELLED", 0, cancelled_by(self._ctx)
        elif last is not None:
            outcome, status, detail = outcome_name(last.outcome), last.upstream_status, last.detail
        else:
            outcome, status, detail = "UNAVAILABLE", 0, "the provider serves its limit of sessions"
        if last is not None or outcome == "CANCELLED":
            self._measure(outcome)
        span = self.span
        if span.is_recording():
            span.set_attribute(attr.ATTEMPT_OUTCOME, outcome)
            if outcome != "OK":
                # The status the failure was classified by (an error event in a 200 stream has
                # its own); a call that succeeded says its 200 in `http.response.status_code`.
                if status:
                    span.set_attribute(attr.UPSTREAM_STATUS, status)
                fail(span, outcome, detail or outcome)
        span.end()

    def _measure(self, outcome: str) -> None:
        d = self._deployment
        request = open_requests.get(id(self._ctx))
        group = request.model_group if request is not None else self._ctx.requested_model
        labels: attr.Attributes = {
            attr.PROVIDER: d.provider,
            attr.DEPLOYMENT: d.name,
            attr.MODEL_GROUP: group,
            attr.OUTCOME: outcome,
        }
        metrics = self._t.metrics
        metrics.attempts.add(1, labels)
        duration: attr.Attributes = {
            attr.OPERATION: self.operation,
            attr.PROVIDER_NAME: attr.provider_name(d.adapter.kind),
            attr.REQUEST_MODEL: d.upstream_model,
            attr.PROVIDER: d.provider,
            attr.DEPLOYMENT: d.name,
            **attr.server_attributes(d.adapter.config.base_url),
        }
        if outcome != "OK":
            duration[attr.ERROR_TYPE] = outcome
        metrics.operation_duration.record(time.perf_counter() - self._started, duration)


def attempt_span(ctx: RequestContext, deployment: Deployment, lease: KeyLease) -> AttemptHandle:
    telemetry = current()
    if not (telemetry.tracing or telemetry.metering):
        return _OFF_ATTEMPT
    return AttemptSpan(telemetry, ctx, deployment, lease)


def claim_call() -> tuple[Span, RefusedCall | None] | None:
    """The current span when it is an attempt's whose call is to be recorded on it: claimed
    now, with its refused call when it is asking again (that call then gets a span of its
    own); None otherwise (no attempt, a sampled-out one, another piece of a split call)."""
    if not (_unclaimed or _refused):  # no recording attempt under way: nothing to look up
        return None
    span = current_span()
    key = id(span)
    if _unclaimed.pop(key, None) is not None:
        return span, None
    refused = _refused.pop(key, None)
    return None if refused is None else (span, refused)


def refuse_call(attempt: Span, call: RefusedCall) -> None:
    """`attempt`'s call was refused: if the attempt asks again, it gets a span of its own."""
    _refused[id(attempt)] = call


def span_for(lease: KeyLease) -> Span:
    """The span of the attempt holding `lease` (even after it stopped being current: a stream's
    reactions after the first chunk), else the current span."""
    attempt = open_attempts.get(id(lease))
    return attempt.span if attempt is not None else current_span()
