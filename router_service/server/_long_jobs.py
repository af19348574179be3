"""What the router process runs beyond a call: background responses, batches, Realtime sessions
and the WebRTC calls' sidebands. They outlive reloads; a stop ends them.

Each kind is built, its modules imported, by its first use: an idle router, or one that only
answers chat calls, never holds them (~1–2 MiB of RSS with their handlers: benchmarks/README.md,
"Where idle RSS goes"). A kind first built after the stop reached it is built stopped, as one
built before would be by then (its new work refused, or ended at once)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router_service.runtime import Runtime
    from router_service.server._background import BackgroundJobs
    from router_service.server._batches import BatchJobs
    from router_service.server._call_watch import CallWatches
    from router_service.server._realtime import LiveSessions

__all__ = ["LongJobs"]

log = logging.getLogger("switchboard.router")


class LongJobs:
    """The process's long-running work of each kind, built on first use."""

    def __init__(self) -> None:
        self._background: BackgroundJobs | None = None
        self._batches: BatchJobs | None = None
        self._realtime: LiveSessions | None = None
        self._call_watches: CallWatches | None = None
        self._sessions_ended = False  # `end_sessions` ran
        # The runtime serving now (`serve_batches`): batches run their lines on it.
        self._runtime_of: Callable[[], Runtime] | None = None
        self._jobs_closed = False  # `shutdown` ran

    @property
    def background(self) -> BackgroundJobs:
        """The background responses this process runs."""
        if self._background is None:
            from router_service.server._background import BackgroundJobs

            self._background = BackgroundJobs()
            if self._jobs_closed:
                self._background.close()
        return self._background

    @property
    def batches(self) -> BatchJobs:
        """The batches this process runs."""
        if self._batches is None:
            from router_service.server._batches import BatchJobs

            self._batches = BatchJobs(self._runtime_of)
            if self._jobs_closed:
                self._batches.close()
        return self._batches

    @property
    def realtime(self) -> LiveSessions:
        """The Realtime sessions this process relays."""
        if self._realtime is None:
            from router_service.server._realtime import LiveSessions

            self._realtime = LiveSessions()
            self._realtime.stopping = self._sessions_ended
        return self._realtime

    @property
    def call_watches(self) -> CallWatches:
        """The sidebands this process keeps on the WebRTC calls it made."""
        if self._call_watches is None:
            from router_service.server._call_watch import CallWatches

            self._call_watches = CallWatches()
            self._call_watches.stopping = self._sessions_ended
        return self._call_watches

    def serve_batches(self, runtime_of: Callable[[], Runtime]) -> None:
        """Run batches' lines on `runtime_of()`, the runtime serving now (a reload's too), and
        take over orphaned batches from now on, on a shared store only (the memory store's are
        this process's): `BatchJobs.adopting`."""
        self._runtime_of = runtime_of
        if self._batches is not None:
            self._batches.runtime_of = runtime_of
        if runtime_of().config.state.backend != "memory":
            self.batches.adopting()

    def reconfigured(self, runtime: Runtime) -> None:
        """A config reload came into force, `runtime` serving it (the settings read as jobs
        start; a background response's cap as it takes its place again)."""
        if self._batches is not None:
            self._batches.reconfigured()
        if self._background is not None:
            self._background.reconfigured(runtime.config.responses.max_background_per_client)

    async def end_sessions(self) -> None:
        """End the Realtime sessions (close 1012: their callers reconnect to another replica at
        once) and the WebRTC calls' sidebands, and those that open from now on."""
        self._sessions_ended = True
        sessions = self._realtime
        if sessions is not None:
            if len(sessions):
                log.info("router stopping: ending %d realtime session(s) (1012)", len(sessions))
            await sessions.restart_all()
        if self._call_watches is not None:
            await self._call_watches.stop_all()  # what they counted is settled

    async def shutdown(self, grace_s: float) -> None:
        """Background responses and batches: `OwnedJobs.shutdown`; new ones refused."""
        self._jobs_closed = True
        built = [jobs for jobs in (self._background, self._batches) if jobs is not None]
        await asyncio.gather(*(jobs.shutdown(grace_s) for jobs in built))
