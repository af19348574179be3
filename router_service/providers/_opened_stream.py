"""A stream over one upstream response, as an adapter's `stream_chat` hands it out.

`@asynccontextmanager` around "open the response, yield its chunks, close it" keeps, for as long
as the stream is open, a suspended async generator (its frame holding the adapter, the call and
the response) and the wrapper object that drives it: ~1.2 KiB an idle stream by tracemalloc
(benchmarks/README.md, "uvicorn's deques"). `OpenedResponse` does the same with three slots.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Generic, TypeVar

import httpx

__all__ = ["OpenedResponse"]

T = TypeVar("T")


class OpenedResponse(Generic[T]):
    """Entering awaits `open()` for the response and returns `read(response)`; leaving closes
    the response, whatever happened (an error inside goes on, as from a context manager's
    `finally`). `open` is let go of once it has answered."""

    __slots__ = ("_open", "_read", "_response")

    def __init__(
        self,
        open: Callable[[], Awaitable[httpx.Response]],
        read: Callable[[httpx.Response], AsyncIterator[T]],
    ) -> None:
        self._open: Callable[[], Awaitable[httpx.Response]] | None = open
        self._read = read
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> AsyncIterator[T]:
        open, self._open = self._open, None
        if open is None:
            raise RuntimeError("an upstream stream is entered once")
        response = self._response = await open()
        return self._read(response)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()
