"""A call that may not be sent twice waits, bounded, for a connection before it is sent.

Such calls keep only grpc's transparent retries (clients/_base.py, `IDEMPOTENT_METHODS`): made
while no connection is up (a lone router restarting: refused, the channel in TRANSIENT_FAILURE)
one would fail at once. No router can have seen a call made before the channel is READY, so
waiting for it is safe; the call is then sent once, as before.

Not grpc's own ``wait_for_ready``: without a deadline it waits forever, and the bound cannot be
shorter than the call's deadline (a stream's runs as long as the model writes). Not a watch per
call either: a cancelled watch stays in grpc Core until the channel's state changes, so one task
per channel watches, and callers wait on it with their own bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import grpc

from clients._base import IDEMPOTENT_METHODS, LOCALLY_CANCELLED
from clients._limits import READY_WAIT_S
from clients.errors import RouterError

__all__ = ["READY_WAIT_S", "FirstStart", "LateStart", "ReadyGate", "Start", "SyncReadyGate"]

_SENT_AT_ONCE = (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.SHUTDOWN)
# gRPC Core's numbers for them (`grpc._common.CYGRPC_CONNECTIVITY_STATE_TO_CHANNEL_CONNECTIVITY`).
_CORE_READY, _CORE_SHUTDOWN = 2, 4
_WATCH_SLICE_S = 0.2  # grpc._channel._poll_connectivity's
_READS = {
    service.rpartition(".")[2].removesuffix("Service").lower(): frozenset(methods)
    for service, methods in IDEMPOTENT_METHODS.items()
}  # {"router": {...}, "admin": {...}}: the clients' names for the two stubs


class ReadyGate:
    """One channel's wait for READY, shared by the calls made while it is not."""

    def __init__(self, channel: Any, bound_s: float = READY_WAIT_S) -> None:
        self._channel = channel
        self._bound_s = bound_s
        self._watch: asyncio.Task[None] | None = None
        self._closed = False

    def sends_at_once(self, stub: str, rpc: str) -> bool:
        """True (one state read) when the channel is READY, or `rpc` a read (its retries wait)."""
        # try_to_connect: an IDLE channel (never used, or idle too long) starts connecting now.
        return self._channel.get_state(True) in _SENT_AT_ONCE or rpc in _READS[stub]

    def sent_once(self, stub: str, rpc: str) -> bool:
        """True when a call of `rpc` started now may reach a router and is not sent again: not a
        read, on a READY channel. On one not READY (after the wait) the call fails before any
        router can see it, unless a connection comes up in that instant."""
        return self.ready() and rpc not in _READS[stub]

    def ready(self) -> bool:
        """The channel is READY now (one state read)."""
        return self._channel.get_state(False) is grpc.ChannelConnectivity.READY

    async def timeout_left(
        self,
        stub: str,
        rpc: str,
        timeout: float | None,  # noqa: ASYNC109 - the gRPC deadline
    ) -> float | None:
        """`timeout` less the time waited for the channel (nothing when `sends_at_once`)."""
        if self.sends_at_once(stub, rpc):
            return timeout
        return await self.wait(timeout, asyncio.get_running_loop().time())

    async def wait(
        self,
        timeout: float | None,  # noqa: ASYNC109 - the gRPC deadline
        since: float,
        stop: asyncio.Future[None] | None = None,
    ) -> float | None:
        """Wait for READY, up to the bound and never past `timeout` counted from `since` (loop
        time), or until `stop` is set; the timeout left. A channel still not READY then is the
        call's to fail (UNAVAILABLE, as without the wait)."""
        if self._watch is None or self._watch.done():
            self._watch = asyncio.get_running_loop().create_task(
                self._channel.channel_ready(), name="switchboard-channel-ready"
            )
            self._watch.add_done_callback(_retrieved)
        loop = asyncio.get_running_loop()
        limit = self._bound_s if timeout is None else min(self._bound_s, timeout)
        limit -= loop.time() - since
        ends = (self._watch,) if stop is None else (self._watch, stop)
        if limit > 0:  # our bound ends our wait, not the watch
            await asyncio.wait(ends, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        self.check_open()
        return None if timeout is None else max(0.0, timeout - (loop.time() - since))

    def check_open(self) -> None:
        """CANCELLED once closed: a call that waited, its client closed meanwhile (not grpc's
        closed-channel misuse, nor the client's refusal of a new call)."""
        if self._closed:
            raise RouterError(LOCALLY_CANCELLED)

    def close(self, *, replaced: bool = False) -> None:
        """Stop watching: the channel is closing (a call waiting ends at once, CANCELLED), or
        `replaced` (`use_credentials`: it stays open for its calls, and one waiting is sent now,
        as when its wait ends, on the new channel, whose state says whether it is sent once)."""
        self._closed = not replaced
        if self._watch is not None:
            self._watch.cancel()


class LateStart:
    """A stream's call made while no connection is up: started at the stream's first read, once
    the channel is READY (bounded as any call's wait), unless the stream was closed before."""

    def __init__(
        self,
        gate: Callable[[], ReadyGate],
        timeout: float | None,
        start: Callable[[float | None], Any],
    ) -> None:
        loop = asyncio.get_running_loop()
        # The client's current channel's, read when it waits and when it starts: the channel
        # it is sent on (`use_credentials` may replace the one it was made on).
        self._gate = gate
        self._timeout = timeout
        self._start = start  # takes the timeout left
        self._since = loop.time()  # the deadline counts from the stream's making, as a call's
        self._stop: asyncio.Future[None] = loop.create_future()
        self.sent_once = False  # `ReadyGate.sent_once`, known once it starts
        # A Realtime session's reader and writer may both wait: the call starts once.
        self._starting = asyncio.Lock()
        self._call: Any = None

    async def call(self) -> Any | None:
        """The call, started; None when the stream was closed first (nothing was sent)."""
        async with self._starting:
            if self._call is None and not self._stop.done():
                left = await self._gate().wait(self._timeout, self._since, self._stop)
                if self._stop.done():
                    return None
                # A late call is no read (reads start at once); rotated meanwhile, the new
                # channel's state, not the old one's: a call it cannot send never reached one.
                gate = self._gate()
                gate.check_open()  # rotated, then the client closed: the new one is
                self.sent_once = gate.ready()
                self._call = self._start(left)
        return self._call  # None: never started (closed first)

    def stop(self) -> None:
        """Never start (the stream is closed); a first read waiting ends at once."""
        if not self._stop.done():
            self._stop.set_result(None)


class Start(Protocol):
    """How a stream's call starts when not at once (`LateStart`, `FirstStart`): at its first
    read or write, unless the stream is closed before."""

    sent_once: bool  # `ReadyGate.sent_once`, known once it starts

    async def call(self) -> Any | None:
        """The call, started; None when the stream was closed first (nothing was sent)."""

    def stop(self) -> None:
        """Never start (the stream is closed); a first read waiting ends at once."""


# The timeout left to a first stream whose lookup took all of its own: a deadline already due.
_SPENT_S = 1e-9


class FirstStart:
    """A stream made as its async client's first call, its router names not looked up yet:
    `opened` looks them up at the stream's first read or write, in a thread as every first
    call's (a stream's making is no coroutine: it looked them up on the event loop), then
    `start` makes the call as the opened client makes any, given the timeout left."""

    def __init__(
        self,
        opened: Callable[[], Coroutine[Any, Any, None]],
        start: Callable[[float | None], tuple[Any, Start | None, bool, Any]],
        timeout: float | None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._opened = opened
        self._start = start
        self._timeout = timeout
        self._since = self._loop.time()  # the deadline counts from the stream's making
        self._stop: asyncio.Future[None] = self._loop.create_future()
        self._starting = asyncio.Lock()  # a Realtime session's reader and writer: one start
        self._late: Start | None = None  # the opened client's own late start, if it made one
        self._call: Any = None
        self.sent_once = False

    async def call(self) -> Any | None:
        async with self._starting:
            if self._call is None and not self._stop.done():
                opening = self._loop.create_task(self._opened(), name="switchboard-lookup")
                await asyncio.wait((opening, self._stop), return_when=asyncio.FIRST_COMPLETED)
                if self._stop.done():  # the lookup goes on in its thread; its end is the client's
                    opening.add_done_callback(_retrieved)
                    return None
                opening.result()  # a name that cannot be looked up: its RouterError
                left = self._timeout
                if left is not None:
                    # Spent: a deadline due at once, which gRPC ends DEADLINE_EXCEEDED (0,
                    # a caller's ValueError, is no timeout `start` takes).
                    left = max(_SPENT_S, left - (self._loop.time() - self._since))
                self._call, self._late, self.sent_once, _ = self._start(left)
                if self._call is None and self._late is not None:
                    self._call = await self._late.call()
                    self.sent_once = self._late.sent_once
        return self._call

    def stop(self) -> None:
        if not self._stop.done():
            self._stop.set_result(None)
        if self._late is not None:
            self._late.stop()


class SyncReadyGate:
    """:class:`ReadyGate` for a blocking channel (``SyncRouterClient``): the state is read from
    gRPC Core in the calling thread, and a call made while it is not READY blocks that thread on
    Core's state watch, bounded as the async one's wait.

    Not grpc's ``subscribe`` nor ``channel_ready_future``: they run a polling thread per channel
    that holds it until unsubscribed, and that fails ("Channel closed!") when the channel closes
    while it polls, as ``with SyncRouterClient(...)`` closing at once would. Core's own calls
    (what that thread makes) are private to ``grpc._channel``: a channel without them (another
    grpc) is sent to at once, as before the wait."""

    def __init__(self, channel: Any, bound_s: float = READY_WAIT_S) -> None:
        self._core: Any = getattr(channel, "_channel", None)  # grpc._channel.Channel's Core one
        self._bound_s = bound_s
        self._closed = False
        self._replaced = False  # `use_credentials`: a call waiting goes to the new channel
        self.waiting = 0  # calls waiting now (a count: one attribute, no lock)

    def _state(self, try_to_connect: bool) -> int:
        """Core's state (`_CORE_STATES`); SHUTDOWN once closed, READY when it cannot be read."""
        try:
            state: int = self._core.check_connectivity_state(try_to_connect)
        except ValueError:  # closed
            return _CORE_SHUTDOWN
        except AttributeError:  # not grpc's Core channel
            return _CORE_READY
        return state

    def before_call(self, stub: str, rpc: str, timeout: float | None) -> tuple[float | None, bool]:
        """The timeout left for a call of `rpc` after the wait (none when the channel is READY or
        `rpc` a read), and whether the call is `ReadyGate.sent_once`."""
        if rpc in _READS[stub]:
            return timeout, False
        # try_to_connect: an IDLE channel (never used, or idle too long) starts connecting now.
        state = self._state(True)
        if state in (_CORE_READY, _CORE_SHUTDOWN):
            return timeout, state == _CORE_READY
        started = time.time()  # Core's watch takes wall-clock deadlines
        limit = self._bound_s if timeout is None else min(self._bound_s, timeout)
        self.waiting += 1
        try:
            while state not in (_CORE_READY, _CORE_SHUTDOWN) and time.time() < started + limit:
                # In slices, as grpc's own polling thread: closing a channel blocks until a
                # watch on it ends, so the client's close would wait out the whole bound, and a
                # rotation (`close(replaced=True)`) is seen within a slice.
                ends = min(started + limit, time.time() + _WATCH_SLICE_S)
                with contextlib.suppress(ValueError):  # closed meanwhile: read as SHUTDOWN
                    self._core.watch_connectivity_state(state, ends)
                if self._replaced:  # sent now, as the async gate's, on the new channel
                    break
                state = _CORE_SHUTDOWN if self._closed else self._state(False)
        finally:
            self.waiting -= 1
        if self._closed:  # the client closed meanwhile: as a call it cancels
            raise RouterError(LOCALLY_CANCELLED)
        left = None if timeout is None else max(0.0, timeout - (time.time() - started))
        return left, state == _CORE_READY  # not READY: the call's to fail (UNAVAILABLE)

    def sent_once(self, stub: str, rpc: str) -> bool:
        """`ReadyGate.sent_once` (a call started now, no wait: one that waited on a channel
        replaced meanwhile); CANCELLED once closed."""
        if self._closed:
            raise RouterError(LOCALLY_CANCELLED)
        return rpc not in _READS[stub] and self._state(False) == _CORE_READY

    def close(self, *, replaced: bool = False) -> None:
        """Before its channel closes (which ends a wait): the calls waiting end CANCELLED; none
        when `replaced` (`use_credentials`: the channel stays open, and a call waiting stops
        waiting on it and goes on the new channel, whose state says whether it is sent once)."""
        self._closed = not replaced
        self._replaced = replaced


def _retrieved(watch: asyncio.Task[None]) -> None:
    # A channel closed under the watch ends it with grpc's UsageError: nothing waits for that.
    if not watch.cancelled():
        with contextlib.suppress(Exception):
            watch.result()
