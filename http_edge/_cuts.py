"""Bodies the edge cuts short on purpose (speech's audio when its upstream broke after the
commit: `_media_stream`): the connection closes before the chunked body's end, so that no client
takes a part for the whole. uvicorn then logs "ASGI callable returned without completing
response." as an ERROR of the application; the edge has said what happened (a warning naming
the failure), so that line is dropped for the tasks that cut on purpose, and kept for any
other (a real fault of ours)."""

from __future__ import annotations

import asyncio
import logging
import weakref

__all__ = ["cut_on_purpose", "quiet_cuts"]

_UNCOMPLETED = "ASGI callable returned without completing response."
_cutting: weakref.WeakSet[asyncio.Task[object]] = weakref.WeakSet()


def cut_on_purpose() -> None:
    """The current task (uvicorn's for this request) ends its response short on purpose."""
    task = asyncio.current_task()
    if task is not None:
        _cutting.add(task)


class _QuietCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != _UNCOMPLETED:
            return True
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop
            return True
        return task is None or task not in _cutting


_FILTER = _QuietCuts()


def quiet_cuts() -> None:
    """Install the filter on uvicorn's error logger (once, however many edges start)."""
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
