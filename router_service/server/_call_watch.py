"""The sideband the router attaches to each WebRTC Realtime call it made (OpenAI's
`wss://<base>/realtime?call_id=...`, with the key that made the call): it reads the call's
events as the upstream sends them, to sum the usage of its `response.done`s, and holds the
caller's stream slot while the call lives, so that a call counts as a WebSocket session does:
in the client's `max_concurrent_streams` while it lasts, then its tokens in the client's tpm
and budgets and in the router's metrics (operation `realtime`). It sends nothing.

The call ends (the upstream closes the sideband: a hangup, the browser leaving, OpenAI's 60
minutes) or `streams.realtime_call_ttl_s` passes, whichever is first; a router stopping ends
its watches (what they counted is settled). A watch lives in the router that made the call: a
replica that dies takes its watches' usage along (the stream slot expires by its TTL). A
sideband refused or broken ends the watch at once (the call goes on upstream, uncounted): a
warning, and the watch's `realtime` request ends with outcome CONNECT_FAILED or
UPSTREAM_ERROR, for operators to alert on. A call hung up through a router before its
sideband attached (its record marked `HUNG_UP`) has ended: its sideband refused is the
watch's normal end."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from clients.switchboard.v1 import media_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import Admission
from router_service.cancellation import uncut
from router_service.engine import Deployment, RequestContext
from router_service.engine._realtime import MAX_EVENT_BYTES, settle_key_logged
from router_service.errors import StoreUnavailableError
from router_service.keys import KeyLease
from router_service.outcomes import Outcome
from router_service.runtime import Runtime
from router_service.server._realtime_usage import RealtimeUsage
from router_service.server._used import give_slot_back, settle_logged
from router_service.telemetry import realtime_span

__all__ = ["HUNG_UP", "CallWatch", "CallWatches", "call_name", "call_record"]

log = logging.getLogger("switchboard.router")

# A call record's mark: a hangup through a router asked the upstream to end the call.
HUNG_UP = "hung_up"


def call_name(call_id: str) -> str:
    """The state store's name of a call's record (`_realtime_calls.py`)."""
    return f"rtcall:{call_id}"


def call_record(kept: str | None) -> dict[str, Any] | None:
    """A call record as kept in the state store; None when there is none (or not one)."""
    if not kept:
        return None
    try:
        record = orjson.loads(kept)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


class CallWatches:
    """The call watches this router runs, so that a stop ends them (and tests see them end)."""

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[None], CallWatch] = {}
        self.stopping = False  # `stop_all` ran: a call answered from now on is not watched

    def __len__(self) -> int:
        return len(self._tasks)

    async def start(self, watch: CallWatch) -> None:
        """Watch the call; once the router stops (a call answered during its drain or grace),
        settle it at once instead: a watch then would outlive the router."""
        if self.stopping:
            await uncut(watch.settle(0, None))
            return
        task = asyncio.create_task(watch.run(), name="switchboard-realtime-call-watch")
        self._tasks[task] = watch
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def idle(self) -> None:
        """Wait until every watch running now (and any started meanwhile) has ended."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def stop_all(self) -> None:
        """End every watch (each settles what it counted), and those started from now on."""
        self.stopping = True
        watches = dict(self._tasks)
        for task in watches:
            task.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
        for watch in watches.values():  # cancelled before its first step: `run` never ran
            if not watch.started:
                await uncut(watch.settle(0, None))


@dataclass(slots=True)
class CallWatch:
    """One call's sideband: `admission` is the call's (its tokens, its stream slot), None when
    it counts neither."""

    runtime: Runtime
    ctx: RequestContext
    deployment: Deployment
    api_key: str = field(repr=False)  # a secret: never in a repr, a log line or a traceback
    call_id: str
    admission: Admission | None
    started: bool = field(default=False, init=False)  # `run` began (its `finally` settles)
    attached: bool = field(default=False, init=False)  # the sideband's handshake succeeded
    # The lease of the key that made the call, given back once answered: its tpm counts the
    # call's usage when it ends, in the minute that is (`KeyLease.settle_tokens`).
    lease: KeyLease | None = field(default=None, init=False, repr=False)

    async def run(self) -> None:
        self.started = True
        tokens = RealtimeUsage()
        with realtime_span(self.ctx) as span:
            keeper = asyncio.create_task(self._keep_slot(), name="switchboard-call-watch-renew")
            reader = asyncio.create_task(self._read(tokens), name="switchboard-call-watch-read")
            limit = self.runtime.config.streams.realtime_call_ttl_s
            lifetime = asyncio.create_task(self.runtime.clock.wait(limit))
            try:
                await asyncio.wait((reader, lifetime), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (keeper, reader, lifetime):
                    task.cancel()
                await asyncio.wait((keeper, reader, lifetime))
                failure = None if reader.cancelled() else reader.exception()
                if failure is not None and (self.attached or not await self._hung_up()):
                    span.failed(self._sideband_failed(failure).name)
                usage = tokens.usage()
                route = self.ctx.route(self.deployment, usage)
                result = media_pb2.MediaResult(usage=usage)
                span.respond_media(pb.MediaResponse(result=result, route=route))
                cost = route.cost_usd if route.HasField("cost_usd") else None
                await uncut(self.settle(tokens.total_tokens, cost))

    def _sideband_failed(self, failure: BaseException) -> Outcome:
        """A sideband that could not attach (CONNECT_FAILED: its handshake refused or never
        made) or broke (UPSTREAM_ERROR): the call goes on upstream, uncounted from then on."""
        outcome = Outcome.UPSTREAM_ERROR if self.attached else Outcome.CONNECT_FAILED
        status = getattr(failure, "status", None)  # a refused handshake's HTTP status
        log.warning(
            "realtime: the sideband of call %s on deployment %s failed (%s%s, %s): the call "
            "goes on uncounted",
            self.call_id,
            self.deployment.name,
            type(failure).__name__,
            "" if status is None else f" {status}",
            outcome.name,
        )
        return outcome

    async def _hung_up(self) -> bool:
        """Whether the call was hung up through a router (its record says so): its sideband,
        not attached yet, was refused because the call had ended, not a failure."""
        try:
            kept = (await self.runtime.store.get_values([call_name(self.call_id)]))[0]
        except StoreUnavailableError:
            return False
        record = call_record(kept)
        return record is not None and record.get(HUNG_UP) is True

    async def _read(self, tokens: RealtimeUsage) -> None:
        import aiohttp  # as engine/_realtime.py: loaded by the routers that serve Realtime

        target = self.deployment.adapter.realtime_sideband_target(self.call_id, self.api_key)
        if target is None:
            return
        url, headers = target
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                url,
                headers=headers,
                max_msg_size=MAX_EVENT_BYTES,
                heartbeat=self.runtime.config.streams.realtime_ping_s,
            ) as socket,
        ):
            self.attached = True
            async for message in socket:
                if message.type is aiohttp.WSMsgType.TEXT:
                    tokens.count(message.data)
                elif message.type is aiohttp.WSMsgType.ERROR:  # aiohttp's: no exception raised
                    failed = message.data
                    raise failed if isinstance(failed, Exception) else ConnectionResetError()
            # A dropped connection (no close handshake) ends the iteration as a close does.
            if socket.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
                raise ConnectionResetError("the sideband's connection was lost")

    async def _keep_slot(self) -> None:
        """Renew the caller's stream slot now (it was taken for the offer's deadline), then
        every third of `server.lease_ttl_s`, as a WebSocket session's."""
        if self.admission is None or not self.admission.holds_stream_slot:
            return
        ttl_s = self.runtime.config.server.lease_ttl_s
        while True:
            try:
                if not await self.admission.renew_stream_slot(ttl_s):
                    log.warning("realtime: a call's stream slot expired before it was renewed")
            except StoreUnavailableError as exc:  # the next period tries again
                log.warning("realtime: renewing a call's stream slot failed: %s", exc.message)
            except Exception:  # a bug: the loop dying would let the slot expire under the call
                log.exception("realtime: renewing a call's stream slot failed")
            await self.runtime.clock.wait(ttl_s / 3)

    async def settle(self, total_tokens: int, cost_usd: float | None) -> None:
        """The call's tokens to its key's tpm and the client's tpm and budgets; its stream
        slot given back. Failures logged: the call was placed, and stays so."""
        if self.lease is not None:
            await settle_key_logged(self.lease, total_tokens)
        if self.admission is None:
            return
        try:  # failures logged: the call was placed, and stays so
            if self.admission.counts_tokens:
                await settle_logged(self.admission, total_tokens, cost_usd)
        finally:
            await give_slot_back(self.admission)
