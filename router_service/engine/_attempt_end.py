"""What an attempt's exit stack does when it closes (`AttemptEnd`): the writes that end an
attempt, each run whatever happened to the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType

from router_service.cancellation import uncut
from router_service.engine._stream_holds import Hold
from router_service.keys import KeyLease
from router_service.sessions import ActiveMark, SessionState

__all__ = ["AttemptEnd"]


class AttemptEnd:
    """What an attempt's stack does when it closes: stop a stream's renewals (`hold`), release
    the key lease and leave the session's active mark (the sticky choice is written before the
    answer: `AttemptRunner._one`). Independent writes, each run whatever happened to the others
    (a cancellation included), as the callbacks of an exit stack would. Those that reach the
    shared store are started together when the store sends them in one round trip (Redis) and
    there is more than one (a task each); the rest (a mark kept in this process) cost no task."""

    __slots__ = ("_lease", "_sessions", "_together", "hold", "mark", "span_end")

    def __init__(self, lease: KeyLease, sessions: SessionState, *, together: bool) -> None:
        self._lease = lease
        self._sessions = sessions
        self._together = together
        self.mark: ActiveMark | None = None
        self.hold: Hold | None = None  # a stream's renewals, stopped first
        # A successful attempt's span, ended last, with what the stack closes with (or what
        # the writes raised): as the stack's own first callback it would have been.
        self.span_end: Callable[[BaseException | None], None] | None = None

    async def __call__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """The stack's exit (pushed as one, not as a callback: no wrapper closure a stream)."""
        try:
            await self._release()
        except BaseException as failed:
            exc = failed
            raise
        finally:
            if self.span_end is not None:
                self.span_end(exc)
        return False

    async def _release(self) -> None:
        # First: a renewal under way leaves a fresh mark, the one to leave (read below).
        errors = await _each([self.hold.stop()]) if self.hold is not None else []
        sessions, mark = self._sessions, self.mark
        local = mark if mark is not None and sessions.leaves_locally(mark) else None
        shared: list[Awaitable[None]] = [self._lease.release()]
        if mark is not None and local is None:
            shared.append(sessions.leave(mark))
        # First the mark kept in this process: it never waits, so nothing cuts it, and a
        # cancellation told after the shared writes (below) must not skip it.
        if local is not None:
            errors += await _each([sessions.leave(local)])
        if self._together and len(shared) > 1:
            # Finished whatever cancels the caller meanwhile (gather alone would cancel writes
            # that had not run yet: a release never sent holds the key until the lease's TTL).
            results = await uncut(asyncio.gather(*shared, return_exceptions=True))
            errors += [result for result in results if isinstance(result, BaseException)]
        else:
            errors += await _each(shared)
        if errors:
            raise errors[0]


async def _each(jobs: list[Awaitable[None]]) -> list[BaseException]:
    """Await every job, whatever the ones before raised; what they raised, in order."""
    errors: list[BaseException] = []
    for job in jobs:
        try:
            await job
        except BaseException as exc:
            errors.append(exc)
    return errors
