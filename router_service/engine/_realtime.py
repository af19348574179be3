"""The Executor's Realtime sessions (RouterService.Realtime), upstream side: open the upstream
WebSocket of a realtime-capable deployment through the attempt loop, so that a refused handshake
(401/403/429/5xx), a refused connection or an `error` event in place of the first event fails
over to the next key or deployment before the caller sees anything (a session opened with an
ephemeral client secret: until the upstream answered its session config, `_configured`); then
end the session, its result recorded as a stream's (statistics, the key's tokens; a drop as a
mid-stream failure).

OpenAI: `wss://<base>/realtime?model=<model>` with `Authorization: Bearer`; Azure OpenAI (its
preview endpoint): `wss://<resource>/openai/realtime?api-version=...&deployment=...` with
`api-key`. The caller's beta protocol travels as `OpenAI-Beta: realtime=v1`.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from clients.switchboard.v1 import chat_pb2, router_service_pb2
from router_service.clock import Clock
from router_service.config import StreamsConfig
from router_service.engine._attempts import Attempt, AttemptRunner, Walked
from router_service.engine._met import Inexpressible
from router_service.engine._model import Deployment, Plan, RequestContext
from router_service.engine._planner import Planner
from router_service.engine._stream_failures import StreamEnds, timed_out
from router_service.errors import UpstreamFailure
from router_service.keys import KeyLease
from router_service.outcomes import Outcome
from router_service.providers import classify_http_error

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "RealtimeSessions",
    "RealtimeUpstream",
    "cannot_realtime",
    "realtime_target",
    "settle_key_logged",
]

log = logging.getLogger("switchboard.router")

# The largest event either side may send: audio deltas are base64 (OpenAI's own limit is 15 MiB
# per event).
MAX_EVENT_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class RealtimeUpstream:
    """An open upstream session: its socket, the events it answered its opening with (its
    `session.created` first), the key it holds, when it opened and how long that took (the
    deployment's latency: how long the caller keeps a session says nothing of its speed)."""

    socket: aiohttp.ClientWebSocketResponse
    opening: list[str]
    lease: KeyLease
    opened_at: float
    opening_s: float = 0.0


def cannot_realtime(deployment: Deployment) -> UpstreamFailure | None:
    """Why `deployment` cannot serve a Realtime session (passed over before a key is leased):
    not marked `realtime: true`, or a kind without a Realtime API."""
    if not deployment.realtime:
        why = f"{deployment.name} is not marked `realtime: true`"
    elif deployment.adapter.realtime_target(deployment.upstream_model, "") is None:
        why = f"{deployment.adapter.kind} offers no Realtime API"
    else:
        return None
    error = {"message": why, "type": "invalid_request_error", "param": "model", "code": None}
    return UpstreamFailure(Outcome.UNSUPPORTED_INPUT, why, upstream_error=error)


def realtime_target(
    deployment: Deployment, api_key: str, *, beta: bool
) -> tuple[str, dict[str, str]]:
    """The upstream socket's URL and handshake headers (the beta protocol's header too)."""
    target = deployment.adapter.realtime_target(deployment.upstream_model, api_key)
    assert target is not None, "passed over by cannot_realtime"
    url, headers = target
    if beta:
        headers["OpenAI-Beta"] = "realtime=v1"
    return url, headers


class RealtimeSessions(StreamEnds):
    """`Executor.open_realtime` and `end_realtime`, a mixin over the Executor's attempt loop."""

    planner: Planner
    _clock: Clock
    _runner: AttemptRunner
    _streams: StreamsConfig

    async def _run(  # the Executor's
        self,
        ctx: RequestContext,
        plan: Plan,
        attempt: Attempt[RealtimeUpstream],
        *,
        tokens: int = 0,
        record_success: bool = True,
        params: chat_pb2.ChatParams | None = None,
        cannot: Inexpressible | None = None,
    ) -> Walked[RealtimeUpstream]:
        raise NotImplementedError

    async def open_realtime(
        self, ctx: RequestContext, *, beta: bool, configure: str | None = None
    ) -> Walked[RealtimeUpstream]:
        """The open upstream session, its deployment and the stack that holds it (its key lease,
        its socket): the caller closes the stack when the session ends. `configure`: a
        `session.update` the session starts with (see `_configured`)."""

        async def attempt(
            deployment: Deployment, lease: KeyLease, stack: AsyncExitStack
        ) -> RealtimeUpstream:
            return await self._connect(ctx, deployment, lease, stack, beta, configure)

        plan = await self.planner.plan(ctx, session=True)
        return await self._run(ctx, plan, attempt, record_success=False, cannot=cannot_realtime)

    async def _connect(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        lease: KeyLease,
        stack: AsyncExitStack,
        beta: bool,
        configure: str | None,
    ) -> RealtimeUpstream:
        """Open the socket and read its first event (and the answer to the `session.update`
        it starts with, if any) within the first-chunk timeout."""
        import aiohttp  # here: a router that serves no Realtime session never loads it

        url, headers = realtime_target(deployment, lease.key.secret, beta=beta)
        first_s, began = deployment.timeouts.first_chunk_s, self._clock.monotonic()
        # A session of its own: it lives as long as the socket, which outlives config reloads.
        session = await stack.enter_async_context(aiohttp.ClientSession())
        try:
            async with self._clock.timeout(ctx.attempt_timeout(first_s)):
                # Pinged while quiet: a dead upstream (half-open TCP) ends the session, which
                # would hold its slots forever otherwise.
                connecting = session.ws_connect(
                    url,
                    headers=headers,
                    max_msg_size=MAX_EVENT_BYTES,
                    heartbeat=self._streams.realtime_ping_s,
                )
                socket = await stack.enter_async_context(connecting)
                first = self._first_event(await socket.receive())
                events = (
                    [first] if configure is None else await _configured(socket, first, configure)
                )
        except TimeoutError as exc:
            detail = f"no first realtime event (nor the session configured) within {first_s:g}s"
            raise timed_out(ctx, detail) from exc
        except aiohttp.WSServerHandshakeError as exc:
            refused = dict(exc.headers or {})
            raise classify_http_error(exc.status, None, refused, self._clock) from exc
        except aiohttp.ClientError as exc:
            detail = f"realtime connect failed: {type(exc).__name__}"
            raise UpstreamFailure(Outcome.CONNECT_FAILED, detail) from exc
        opened_at = self._clock.monotonic()
        return RealtimeUpstream(socket, events, lease, opened_at, opened_at - began)

    def _first_event(self, first: aiohttp.WSMessage) -> str:
        """The upstream's first event (`session.created`); its refusal as a failure."""
        import aiohttp

        if first.type is not aiohttp.WSMsgType.TEXT:
            detail = "the upstream closed the realtime socket before its first event"
            raise UpstreamFailure(Outcome.UPSTREAM_ERROR, detail)
        refusal = _error_event(first.data)
        if refusal is not None:  # e.g. a key the upstream refuses after the handshake
            raise classify_http_error(0, refusal, {}, self._clock)
        data: str = first.data
        return data

    async def end_realtime(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        upstream: RealtimeUpstream,
        total_tokens: int,
        failure: UpstreamFailure | None,
    ) -> router_service_pb2.StreamError | None:
        """Record how the session ended: a success (statistics, measured by its opening), or
        `failure` (reacted to as a failure after the commit; its error event returned). The
        key's tokens either way: the upstream used them before it dropped the session."""
        lease = upstream.lease
        if total_tokens:
            await settle_key_logged(lease, total_tokens)
        if failure is not None:
            return await self._failed_midstream(ctx, deployment, lease, failure, upstream.opened_at)
        await self._runner.stats.record(deployment.health_name, True, upstream.opening_s)
        return None


async def settle_key_logged(lease: KeyLease, total_tokens: int) -> None:
    """A Realtime session's (or call's) tokens to its key's tpm; a failure (the state store
    lost) logged, not raised: the session's end is what its caller is owed (the estimate stays
    counted)."""
    try:
        await lease.settle_tokens(total_tokens)
    except Exception:
        log.warning("realtime: a session's usage did not reach its key's tpm", exc_info=True)


async def _configured(
    socket: aiohttp.ClientWebSocketResponse, created: str, update: str
) -> list[str]:
    """Send `update` (a `session.update`) and read up to the upstream's answer to it: the events
    the caller sees first, as OpenAI shows a session configured before it opened. Its
    `session.updated` is not relayed: `session.created` carries its `session` in its place. An
    `error` instead is relayed right after `session.created` (the session as it was)."""
    import aiohttp

    await socket.send_str(update)
    held: list[str] = []  # the upstream's other events meanwhile, relayed after, in order
    while True:
        message = await socket.receive()
        if message.type is aiohttp.WSMsgType.BINARY:
            continue
        if message.type is not aiohttp.WSMsgType.TEXT:
            detail = "the upstream closed the realtime socket before it configured the session"
            raise UpstreamFailure(Outcome.UPSTREAM_ERROR, detail)
        event = _event(message.data)
        kind = None if event is None else event.get("type")
        if kind == "session.updated" and event is not None:
            first = _event(created) or {}
            return [orjson.dumps({**first, "session": event.get("session")}).decode(), *held]
        held.append(message.data)
        if kind == "error":
            return [created, *held]


def _event(data: str) -> dict[str, Any] | None:
    """A JSON event; None for anything else."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def _error_event(data: str) -> dict[str, object] | None:
    """The `error` object of an `error` event; None for any other event."""
    event = _event(data) if '"error"' in data else None
    error = None if event is None else event.get("error")
    if event is not None and event.get("type") == "error" and isinstance(error, dict):
        return error
    return None
