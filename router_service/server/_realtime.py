"""RouterService.Realtime: OpenAI's Realtime API sessions through the router. The auth
interceptor admitted the call on its `open` message (scope, allowed model, rpm, a stream slot
for the session's life); here the upstream socket is opened through the attempt loop (failover
before anything is relayed), then events go both ways until either side closes:

- the caller's events are screened by the request-side guardrails where they carry text
  (`session.update`'s and `response.create`'s instructions, the items of
  `conversation.item.create` and of `response.create`'s `input`: `event_texts`): a redaction
  rewrites the event, a block ends the session with an `error` event and close code 1008;
- the upstream's events go to the caller as they are; the usage of each `response.done` is
  summed for the client's tpm and budgets, the key's tokens and the span;
- an upstream that drops the session (no close handshake, or an error close code, or no answer
  to the pings of `streams.realtime_ping_s`: a half-open connection) is a failure after the
  commit: recorded and reacted to, told as an `error` event, then close code 1011; but a
  pong unread because the caller read nothing (`_check_stall`) is the caller's: close 1008;
  and so is a close 1009 (message too big) after the caller sent an event over 1 MiB: an
  `error` event, then 1009 (after smaller events only, or a 1003/1007, it is the upstream's);
- a graceful stop ends every session at its start (`LiveSessions.restart_all`): an `error`
  event saying the server restarts, then close code 1012, so callers reconnect elsewhere at
  once instead of after the grace period.

A session outlives the TTL of its caller's stream slot (`server.lease_ttl_s`, a backstop for a
crashed router): the relay renews it every third of it while it lives (its key lease and session
mark are renewed as every stream's are).

A client whose guardrails screen answers is refused: realtime deltas are not screened, and
letting them through would leak what its rules withhold elsewhere."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING

import grpc

from clients import to_grpc_status
from clients.switchboard.v1 import chat_pb2, media_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import current_admission, current_stream_admission
from router_service.cancellation import uncut
from router_service.engine import FailedEnd, RequestContext
from router_service.engine._realtime import RealtimeUpstream, settle_key_logged
from router_service.errors import (
    DeadlineExceededError,
    InvalidRequestError,
    PermissionDeniedError,
    UpstreamFailure,
)
from router_service.outcomes import Outcome
from router_service.runtime import Runtime
from router_service.server._errors import error_details
from router_service.server._hooks import ServicerHooks
from router_service.server._open_sessions import OpenSession
from router_service.server._realtime_deadline import watch_deadline
from router_service.server._realtime_events import close_message, error_event, event_message
from router_service.server._realtime_screening import event_id_of, screened
from router_service.server._realtime_secrets import opening_update
from router_service.server._realtime_tools import SessionTools, tell_caller
from router_service.server._realtime_usage import RealtimeUsage
from router_service.server._used import settle_logged
from router_service.sessions import checked_session_id
from router_service.telemetry import realtime_span

if TYPE_CHECKING:
    from router_service.engine import Deployment
    from router_service.engine._stream_holds import SlotHold

__all__ = ["LiveSessions", "RealtimeServicer", "error_event"]

log = logging.getLogger("switchboard.router")

_NORMAL, _GOING_AWAY, _POLICY, _SERVER_ERROR, _RESTART = 1000, 1001, 1008, 1011, 1012
_ABNORMAL = 1006  # aiohttp's close code for a socket whose ping went unanswered
_RESTARTING = "The server is restarting: reconnect to continue on another server."
# A close 1009 (message too big) refuses the caller's event, the caller's to hear, not a failure
# of the upstream (OpenAI closes 1009 over its 15 MiB), only once the caller sent one over
# 1 MiB: no WebSocket server takes less by default (websockets' max_size; aiohttp's is 4 MiB),
# so after smaller events only it is something in front of the upstream refusing everything.
# 1003/1007 never are: the caller's events reach it as text, valid UTF-8 (protobuf strings).
_TOO_BIG, _REFUSABLE_CHARS = 1009, 1 << 20


class LiveSessions:
    """The realtime sessions this router relays now, so that a graceful stop ends them first."""

    def __init__(self) -> None:
        self._relays: set[_Relay] = set()
        self.stopping = False

    def __len__(self) -> int:
        return len(self._relays)

    def add(self, relay: _Relay) -> None:
        self._relays.add(relay)

    def listed(self) -> list[OpenSession]:
        """The sessions open now as an operator sees them (AdminService.ListJobs), newest
        first."""
        sessions = [relay.listed for relay in self._relays]
        return sorted(sessions, key=lambda session: session.opened_unix, reverse=True)

    def discard(self, relay: _Relay) -> None:
        self._relays.discard(relay)

    async def restart_all(self) -> None:
        """Tell every session's caller the server restarts and end it (also those that open
        from now on)."""
        self.stopping = True
        ended = await asyncio.gather(
            *(relay.restart() for relay in list(self._relays)), return_exceptions=True
        )
        for failed in (e for e in ended if isinstance(e, Exception)):  # its socket was gone
            log.debug("realtime: ending a session for the stop failed: %r", failed)


class RealtimeServicer(ServicerHooks):
    """`RouterServicer.Realtime` (`_features.py`)."""

    async def Realtime(
        self, request_iterator: AsyncIterator[pb.RealtimeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RealtimeResponse]:
        try:
            opening = (await anext(request_iterator)).open  # the interceptor checked it
            session = checked_session_id(opening.routing.session_id)
            ctx = self._context(opening.model, session, context)
            if self._answer_guard(ctx.client, ctx.requested_model, "Realtime", context) is not None:
                raise PermissionDeniedError(
                    "Realtime sessions are not available to a client whose guardrails screen "
                    "answers: realtime events are not screened.",
                    code="realtime_not_screened",
                )
            # An ephemeral key's session config, which the gate screened (before counting it).
            update = opening_update(opening.beta)
            executor = self.runtime.executor
            # Headers before the upstream handshake: the caller's client then waits for the
            # route as a read its interrupt ends freely (clients/_cancelling.py).
            await context.send_initial_metadata(())
            with realtime_span(ctx) as span:
                opened = await executor.open_realtime(ctx, beta=opening.beta, configure=update)
                upstream, deployment, stack = opened
                async with FailedEnd(stack):  # its end: a failed release logged
                    tools = SessionTools(update)
                    relay = _Relay(self.runtime, ctx, deployment, upstream, tools)
                    self.live_sessions.add(relay)
                    try:
                        if self.live_sessions.stopping:  # opened while the router stops
                            await relay.restart()
                        yield pb.RealtimeResponse(route=ctx.route(deployment))
                        requests = relay.listed.from_caller(request_iterator)  # counted
                        async with aclosing(relay.run(requests)) as events:
                            async for message in events:
                                relay.listed.events_to_caller += 1
                                yield message
                        if relay.deadline_passed:
                            raise DeadlineExceededError(
                                "The call's deadline passed: the realtime session was ended "
                                "and its upstream socket closed."
                            )
                    finally:
                        self.live_sessions.discard(relay)
                        usage = await uncut(relay.settle())
                        span.respond_media(
                            pb.MediaResponse(
                                result=media_pb2.MediaResult(usage=usage),
                                route=ctx.route(deployment, usage),
                            )
                        )
        except Exception as exc:
            await context.abort_with_status(to_grpc_status(error_details(exc)))


class _Relay:
    """One open session's two directions, and how it ended."""

    def __init__(
        self,
        runtime: Runtime,
        ctx: RequestContext,
        deployment: Deployment,
        upstream: RealtimeUpstream,
        tools: SessionTools,
    ) -> None:
        self._runtime = runtime
        self._tools = tools  # its tools as configured so far, for its `session.update`s
        self._ctx = ctx
        self._deployment = deployment
        self._upstream = upstream
        self._tokens = RealtimeUsage()
        # Set by the caller's side when it ends the session: (error event or None, code, reason).
        self._ending: tuple[str | None, int, str] | None = None
        self._settled = False
        # The session's ping period, as its socket's heartbeat got it (a reload changes neither);
        # set how long the caller had not read when the unread pong ended the session.
        self._ping_s = runtime.config.streams.realtime_ping_s
        self._caller_stalled_s: float | None = None
        self._upstream_broke = False  # our socket closed on a frame it sent
        self.deadline_passed = False  # the caller's deadline ended it (`_watch_deadline`)
        self._largest_sent = 0  # the caller's largest event, in characters
        self._admission = current_stream_admission()  # its stream slot, renewed here
        # As an operator sees it (AdminService.ListJobs): the upstream key by its fingerprint.
        fingerprint = upstream.lease.key.fingerprint
        opened = runtime.clock.now()
        self.listed = OpenSession(
            ctx.client, ctx.requested_model, deployment.name, fingerprint, opened
        )

    async def run(
        self, requests: AsyncIterator[pb.RealtimeRequest]
    ) -> AsyncGenerator[pb.RealtimeResponse, None]:
        """The upstream's events (its first one first), then how the session ended."""
        socket = self._upstream.socket
        caller = asyncio.create_task(self._from_caller(requests), name="switchboard-realtime-in")
        deadline = watch_deadline(self._ctx, self._at_deadline)
        slot = self._keep_slot()
        try:
            loop = asyncio.get_running_loop()  # aiohttp's heartbeat timers' clock
            for event in self._upstream.opening:
                self._tokens.count(event)
                taken = loop.time()
                yield pb.RealtimeResponse(event_json=event)
                self._check_stall(loop.time() - taken)
            async for message in socket:
                if message.type.name != "TEXT":  # realtime events are text; pings are aiohttp's
                    # an ERROR: our socket closed on a frame the upstream sent (1009 over
                    # MAX_EVENT_BYTES, 1007 bad UTF-8), its fault, not a refusal of the caller's
                    self._upstream_broke |= message.type.name == "ERROR"
                    continue
                self._tokens.count(message.data)
                taken = loop.time()
                yield pb.RealtimeResponse(event_json=message.data)
                self._check_stall(loop.time() - taken)
        finally:
            caller.cancel()
            if deadline is not None:
                deadline.cancel()
            if slot is not None:  # first: its renewals end at once, even if this is cancelled
                await slot.stop()  # again before the caller's side has ended
            await asyncio.wait((caller,) if deadline is None else (caller, deadline))
            if not caller.cancelled() and caller.exception() is not None:  # retrieved: the
                # upstream socket it wrote to failed, and `run` ends on that too
                log.info("realtime: relaying the caller's events failed: %r", caller.exception())
        for ended in await self._ended(socket.close_code):
            yield ended

    def _caller_too_big(self) -> bool:
        """Whether a close 1009 refused an event of the caller's: not our own socket's on the
        upstream's frame, and the caller sent one big enough for some server to refuse."""
        return not self._upstream_broke and self._largest_sent > _REFUSABLE_CHARS

    def _check_stall(self, waited_s: float) -> None:
        """Note a caller that did not take an event for so long that the upstream socket's
        heartbeat failed meanwhile: backpressure stopped the router reading the socket, so the
        upstream's pong went unread (aiohttp closed it: 1006). A healthy upstream, not cooled
        for it. (A ping needs `ping_s` without a byte read, its pong `ping_s / 2` more.)"""
        socket = self._upstream.socket
        unread = socket.closed and socket.close_code == _ABNORMAL
        if unread and waited_s >= 1.5 * self._ping_s and self._caller_stalled_s is None:
            self._caller_stalled_s = waited_s

    async def _from_caller(self, requests: AsyncIterator[pb.RealtimeRequest]) -> None:
        """Relay the caller's events until it closes (or a guardrail blocks one), then close the
        upstream socket, which ends `run`'s loop."""
        ending: tuple[str | None, int, str] = (None, _NORMAL, "")
        request = pb.RealtimeRequest()
        try:
            async for request in requests:
                kind = request.WhichOneof("message")
                if kind == "close":
                    ending = (None, request.close.code or _NORMAL, request.close.reason)
                    break
                if kind != "event_json":  # nothing set (a field the caller's library did not
                    # know, dropped), or a second open: refused, never dropped without a word
                    set_ = "`open` again" if kind == "open" else "none of its fields"
                    raise InvalidRequestError(
                        f"A Realtime message after the `open` sets `event_json` or `close`; "
                        f"this one set {set_}.",
                        code="invalid_message",
                        param="open" if kind == "open" else "event_json",
                    )
                model, event_json = self._ctx.requested_model, request.event_json
                event, refusal = screened(self._runtime, model, event_json, self._tools)
                if refusal is not None:  # told, not sent: the session goes on
                    tell_caller(self._upstream.socket, refusal)
                    continue
                if len(event) > self._largest_sent:
                    self._largest_sent = len(event)
                await self._upstream.socket.send_str(event)
        except InvalidRequestError as refused:  # a guardrail's block, a message no valid one
            said = error_event(
                refused.openai_type,
                refused.code,
                refused.message,
                refused.param,
                event_id_of(request.event_json),  # the event refused, as OpenAI's errors name it
            )
            ending = (said, _POLICY, "")
        if self._ending is None:  # else the router ended it first (a stop)
            self._ending = ending
        await self._upstream.socket.close(code=_NORMAL)

    async def _at_deadline(self) -> None:
        """The caller's deadline ends the session (`watch_deadline`)."""
        if self._ending is None:  # else the session is ending already
            self._ending = (None, _GOING_AWAY, "deadline exceeded")
            self.deadline_passed = True
        await self._upstream.socket.close(code=_GOING_AWAY)  # ends `run`'s loop

    async def restart(self) -> None:
        """End the session for a graceful stop: its caller hears an `error` event saying the
        server restarts, then close code 1012 ("service restart": open a new session now, which
        another replica takes; nothing of this one carries over)."""
        if self._ending is None:
            event = error_event("server_error", "server_restarting", _RESTARTING)
            self._ending = (event, _RESTART, "service restart")
        await self._upstream.socket.close(code=_GOING_AWAY)  # ends `run`'s loop

    def _keep_slot(self) -> SlotHold | None:
        """The caller's stream slot, renewed every third of its TTL while the session lives: it
        outlives the TTL (OpenAI's sessions last up to 60 minutes), and a slot expired under an
        open session lets the limits undercount. By the runtime's renewer, as the attempt's key
        lease and session mark are (engine/_stream_holds.py): no task per session."""
        if self._admission is None:
            return None
        renewer = self._runtime.runner.renewer
        return renewer.keep_slot(self._admission, self._runtime.config.server.lease_ttl_s)

    async def _ended(self, close_code: int | None) -> list[pb.RealtimeResponse]:
        """Record how the session ended; the messages that tell the caller."""
        ending = self._ending
        failure = None
        if ending is None and self._caller_stalled_s is not None:
            ending = (_not_read(self._caller_stalled_s), _POLICY, "events not read")
        elif ending is None and close_code == _TOO_BIG and self._caller_too_big():
            ending = (_too_big(), _TOO_BIG, "message too big")
        elif ending is None and close_code not in (_NORMAL, 1001):
            detail = f"the upstream dropped the realtime session (close code {close_code})"
            failure = UpstreamFailure(Outcome.UPSTREAM_ERROR, detail)
        executor = self._runtime.executor
        error = await executor.end_realtime(
            self._ctx, self._deployment, self._upstream, self._tokens.total_tokens, failure
        )
        self._settled = True
        await self._settle_client()
        if self.deadline_passed:  # the servicer ends the call DEADLINE_EXCEEDED
            return []
        if error is not None:
            event = error_event(error.type, error.code, error.message)
            return [event_message(event), close_message(_SERVER_ERROR, "upstream error")]
        if ending is None:  # the upstream closed it
            return [close_message(close_code or _NORMAL, "")]
        messages = [] if ending[0] is None else [event_message(ending[0])]
        return [*messages, close_message(ending[1], ending[2])]

    async def settle(self) -> chat_pb2.Usage:
        """The session's usage; settled against the key and the client when `run` did not
        end it (the caller left)."""
        if not self._settled:
            self._settled = True
            self._ctx.record(
                self._deployment,
                self._upstream.lease.key.fingerprint,
                Outcome.CANCELLED,
                self._upstream.opened_at,
            )
            if self._tokens.total_tokens:
                await settle_key_logged(self._upstream.lease, self._tokens.total_tokens)
            await self._settle_client()
        return self._tokens.usage()

    async def _settle_client(self) -> None:
        admission = current_admission()
        if admission is None:
            return
        usage = self._tokens.usage()
        route = self._ctx.route(self._deployment, usage)
        cost = route.cost_usd if route.HasField("cost_usd") else None
        await settle_logged(admission, usage.total_tokens, cost)  # its close told all the same


def _too_big() -> str:
    message = (
        f"The upstream closed the session (close code {_TOO_BIG}): an event you sent was "
        "larger than it takes."
    )
    return error_event("invalid_request_error", "event_too_large", message)


def _not_read(waited_s: float) -> str:
    message = (
        f"The session ended: its events were not read for {waited_s:.1f}s, so the connection "
        "to the upstream timed out. Read the events as they come."
    )
    return error_event("invalid_request_error", "events_not_read", message)
