"""The router's door: one interceptor that puts every RouterService and AdminService call through
the auth Gate (key, scope, allowed model, request bounds, the caller's limits) before its handler
runs; an address that sent too many unknown keys is refused before its key is read
(`_throttles.py`). Health and reflection stay open; the health check's trailing metadata says
whether the router runs in open mode (`switchboard-auth: open | keys`), which the edge shows in
`/readyz`.

Handlers are wrapped, not replaced: a unary handler is admitted, served and its usage settled
against the caller's tpm window; a streaming handler also holds a stream slot for its whole life,
given back on every path (end, error, cancellation).

A request whose bytes are no valid message (invalid UTF-8 in a string, a corrupt or cut wire
format) is refused by the wrapper as INVALID_ARGUMENT, before authentication, on the open methods
too (health, reflection): its deserializer hands over an `Undecodable` instead of raising, which
grpc would log as a traceback and answer UNKNOWN without details.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import grpc

from clients import to_grpc_status
from router_service._wrapped_handlers import WrappedHandlers
from router_service.auth import (
    Admission,
    Attempt,
    Gate,
    MethodRule,
    audited_request_id,
    rule_for,
    set_current_admission,
    set_current_caller,
    set_current_standing,
)
from router_service.cancellation import uncut
from router_service.config import AuthConfig
from router_service.errors import InvalidRequestError
from router_service.runtime import Runtime
from router_service.server._errors import error_details, rate_limit_message
from router_service.server._field_paths import serving
from router_service.server._running import RunningCalls
from router_service.server._throttles import Throttles
from router_service.server._undecodable import decoded, refuse_undecodable, refusing, tolerant
from router_service.server._used import (
    Used,
    give_back_if_refused,
    give_slot_back,
    refused_as_invalid,
)

__all__ = [
    "AUTH_MODE_METADATA",
    "HEALTH_CHECK",
    "AuthInterceptor",
    "auth_interceptor",
]

log = logging.getLogger("switchboard.router")

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
AUTH_MODE_METADATA = "switchboard-auth"
# A stream's slot outlives its deadline by this much before the store expires it on its own.
_STREAM_SLOT_MARGIN_S = 5.0

Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Streaming = Callable[[Any, grpc.aio.ServicerContext], AsyncGenerator[Any, None]]
Bidi = Callable[[AsyncIterator[Any], grpc.aio.ServicerContext], AsyncGenerator[Any, None]]


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    def __init__(
        self, gate: Gate, *, stream_ttl_s: float, throttles: Throttles | None = None
    ) -> None:
        self._gate = gate
        self._stream_ttl_s = stream_ttl_s  # backstop of a stream slot without a deadline
        # Guessed keys (`_throttles.py`); kept across reloads (an attacker's count goes on).
        self.throttles = throttles or Throttles(AuthConfig(open=True))
        self._wrapped = WrappedHandlers(self._wrap)  # per method, as registered
        self.calls = RunningCalls()  # what a stop waits for (server/_running.py)

    def use(self, gate: Gate, *, stream_ttl_s: float, auth: AuthConfig) -> None:
        """Admit calls through `gate` from now on (a reloaded config's callers and limits)."""
        self._gate = gate
        self._stream_ttl_s = stream_ttl_s
        self.throttles.configure(auth)

    def warn_if_open(self) -> None:
        """The loud start-up warning of open mode."""
        if self._gate.open:
            log.warning(
                "AUTHENTICATION IS OFF (auth.open: true): anyone who reaches the router can spend "
                "the provider keys. Configure auth.clients for anything but a demo."
            )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self._wrapped.wrapped(handler_call_details.method, handler)

    def _wrap(self, method: str, handler: Any) -> Any:
        if method == HEALTH_CHECK and handler.unary_unary is not None:
            return _unary_handler(handler, self._with_auth_mode(handler.unary_unary))
        rule = rule_for(method)
        if rule is None:  # open to all; its undecodable requests refused all the same
            return refusing(handler)
        if handler.unary_unary is not None:
            return _unary_handler(handler, self._unary(method, rule, handler.unary_unary))
        if handler.unary_stream is not None:
            return _stream_handler(handler, self._stream(method, rule, handler.unary_stream))
        if handler.stream_stream is not None:
            return _bidi_handler(handler, self._bidi(method, rule, handler.stream_stream))
        return None  # client streaming would pass unchecked; none exists, so refuse

    def _unary(self, method: str, method_rule: MethodRule, behavior: Unary) -> Unary:
        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            task = self.calls.enter()
            served = None
            try:
                await refuse_undecodable(request, context)
                served = serving(request)  # its refusals' BadRequest paths (`_field_paths.py`)
                rule = method_rule.of(request)  # a Media call's rerank has a rule of its own
                stream = rule.holds_stream  # its handler owns the slot from here
                admission = await self._admit(method, rule, request, context, stream=stream)
                try:
                    response = await behavior(request, context)
                except BaseException as error:
                    await give_back_if_refused(admission, error)
                    raise
                if admission.rate_status is not None or admission.guardrails:
                    _tell_route(rule, response, admission)
                if admission.counts_tokens:
                    used = Used(rule, request)
                    used.see(response)
                    await uncut(used.settle(admission))  # see `_stream`
                return response
            finally:
                self._leave(task, served)

        return handle

    def _stream(self, method: str, rule: MethodRule, behavior: Streaming) -> Streaming:
        async def handle(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncGenerator[Any, None]:
            task = self.calls.enter()
            served = None
            try:
                await refuse_undecodable(request, context)
                served = serving(request)  # its refusals' BadRequest paths (`_field_paths.py`)
                admission = await self._admit(method, rule, request, context, stream=True)
                used = Used(rule, request) if admission.counts_tokens else None
                # Told once, on the route event: the caller's standing, the guardrails.
                untold = admission.rate_status is not None or bool(admission.guardrails)
                sent = False  # for a call counted in rpm only (no `used`): whether it answered
                try:
                    async with aclosing(behavior(request, context)) as events:
                        async for message in events:
                            sent = True
                            if used is not None:
                                used.see(message)
                            if untold and _tell_route(rule, message, admission):
                                untold = False
                            yield message
                            del message  # not held while the stream waits for its next
                except BaseException as error:
                    if refused_as_invalid(error):
                        if used is not None:
                            used.refuse(error)
                        elif not sent:  # its rpm place only
                            await give_back_if_refused(admission, error)
                    raise
                finally:
                    # Also when the caller left or the call failed, and to its end: a task can
                    # be cancelled again meanwhile (a stop cancels the calls a caller left), and
                    # a settlement cut there loses the token correction and the stream slot
                    # until their TTL.
                    if used is not None or admission.holds_stream_slot:  # else: no task
                        await uncut(_end(used, admission))
            finally:
                self._leave(task, served)

        return handle

    def _bidi(self, method: str, rule: MethodRule, behavior: Bidi) -> Bidi:
        """A bidirectional call (Realtime), admitted on its first message, which the handler
        then reads again; it holds a stream slot for its whole life. Its usage is the
        handler's to settle (the session's events are not protobuf usage); one refused as
        invalid before it opened (`refused_as_invalid`) gives its rpm place back, as a unary
        call's."""

        async def handle(
            requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
        ) -> AsyncGenerator[Any, None]:
            task = self.calls.enter()
            served = None
            try:
                first = await anext(aiter(requests), None)
                if first is None:
                    error = InvalidRequestError("The call sent no message.", code="invalid_message")
                    await context.abort_with_status(to_grpc_status(error_details(error)))
                    raise AssertionError("unreachable: abort raises")
                await refuse_undecodable(first, context)
                served = serving(first)  # its refusals' BadRequest paths (`_field_paths.py`)
                admission = await self._admit(method, rule, first, context, stream=True)
                # Told on the route, as `_stream`'s: the standing, the guardrails that redacted
                # an ephemeral secret's session config.
                untold = admission.rate_status is not None or bool(admission.guardrails)
                sent = False  # a session refused before its route (opened upstream) used nothing
                try:
                    async with aclosing(behavior(decoded(first, requests), context)) as events:
                        async for message in events:
                            sent = True
                            if untold and _tell_route(rule, message, admission):
                                untold = False
                            yield message
                            del message
                except BaseException as error:
                    if not sent:
                        await give_back_if_refused(admission, error)
                    raise
                finally:
                    await uncut(_end(None, admission))  # see `_stream`
            finally:
                self._leave(task, served)

        return handle

    def _leave(self, task: Any, served: list[Any] | None) -> None:
        """A call's end: its request no longer named by a task it started (a background job,
        which copied its context), and a stop no longer waits for it."""
        if served is not None:
            served.clear()
        self.calls.leave(task)

    def _with_auth_mode(self, behavior: Unary) -> Unary:
        async def check(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await refuse_undecodable(request, context)
            mode = "open" if self._gate.open else "keys"  # read per call: a reload may change it
            context.set_trailing_metadata(((AUTH_MODE_METADATA, mode),))
            return await behavior(request, context)

        return check

    async def _admit(
        self,
        method: str,
        rule: MethodRule,
        request: Any,
        context: grpc.aio.ServicerContext,
        *,
        stream: bool,
    ) -> Admission:
        """Authenticate and admit, or end the call with the error's rich status."""
        attempt = _attempt(method, context)
        ttl_s = None
        if stream:
            remaining = context.time_remaining()
            ttl_s = self._stream_ttl_s if remaining is None else remaining + _STREAM_SLOT_MARGIN_S
        try:
            caller = self.throttles.authenticate(self._gate, attempt, rule)
            admission = await self._gate.admit(attempt, caller, rule, request, stream_ttl_s=ttl_s)
        except Exception as exc:
            await context.abort_with_status(to_grpc_status(error_details(exc)))
            raise AssertionError("unreachable: abort raises") from exc
        # Each RPC runs in a context of its own: the servicer below sees this caller only (and
        # its error boundary this call's standing, for a failure after it was counted).
        set_current_caller(admission.caller)  # an ephemeral secret's: its session screened
        if admission.rate_status is not None:
            set_current_standing(admission.rate_status)
        # For a handler that settles later (background responses: or gives back, rpm too) or
        # renews its stream slot (a realtime session).
        if admission.counted or admission.holds_stream_slot:
            set_current_admission(admission)
        return admission


def _tell_route(rule: MethodRule, message: Any, admission: Admission) -> bool:
    """Put the caller's rate standing and the guardrails that redacted its request on the
    message's route (before those that acted on its answer), when it carries one (a unary
    answer, a stream's route event); whether it did. Every message here is this call's own
    (the response cache copies what it keeps and what it serves), so writing into it is
    safe."""
    route = rule.route(message) if rule.route is not None else None
    if route is None:
        if rule.standing is None or admission.rate_status is None:
            return False
        rule.standing(message).CopyFrom(rate_limit_message(admission.rate_status))
        return True
    if admission.rate_status is not None:
        route.rate_limit.CopyFrom(rate_limit_message(admission.rate_status))
    if admission.guardrails:
        # The request's first, then those that acted on the answer (set by the engine).
        route.guardrails[:] = list(dict.fromkeys((*admission.guardrails, *route.guardrails)))
    return True


async def _end(used: Used | None, admission: Admission) -> None:
    """Settle a stream's usage (`Used.settle`: a failure logged), then give its slot back
    whatever the settlement did. A failed give-back (the state store lost) is logged, not
    raised: the stream told its caller all it had (its answer, or its own error), and an error
    after that would stand in its place; the slot expires by its TTL."""
    try:
        if used is not None:
            await used.settle(admission)
    finally:
        await give_slot_back(admission)


def _attempt(method: str, context: grpc.aio.ServicerContext) -> Attempt:
    authorization = forwarded_for = request_id = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and authorization is None:
            authorization = value if isinstance(value, str) else None
        elif key == "x-forwarded-for" and forwarded_for is None:
            forwarded_for = value if isinstance(value, str) else None
        elif key == "x-request-id" and request_id is None:
            request_id = audited_request_id(value)
    return Attempt(method, authorization, context.peer(), forwarded_for, request_id)


def _unary_handler(handler: Any, behavior: Unary) -> Any:
    return grpc.unary_unary_rpc_method_handler(
        behavior,
        request_deserializer=tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


def _stream_handler(handler: Any, behavior: Streaming) -> Any:
    return grpc.unary_stream_rpc_method_handler(
        behavior,
        request_deserializer=tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


def _bidi_handler(handler: Any, behavior: Bidi) -> Any:
    return grpc.stream_stream_rpc_method_handler(
        behavior,
        request_deserializer=tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


def auth_interceptor(runtime: Runtime) -> AuthInterceptor:
    """The interceptor for a runtime (`use` moves it to a reloaded one's gate)."""
    config = runtime.config
    return AuthInterceptor(
        runtime.gate,
        stream_ttl_s=config.server.lease_ttl_s,
        throttles=Throttles(config.auth, runtime.clock),
    )
