"""A response's head and its first body bytes in one write.

uvicorn writes a response's head when the app sends `http.response.start` and each body part when
it sends `http.response.body`: two `write`s, so two `send()`s on the socket and often two
wake-ups of the client, for responses whose body follows their head at once. Most do: a JSON
answer's body is sent right after its head, and a stream's head is sent only once the router's
first chunks are in hand (`_routes_chat.sse_stream`), with them right behind it.

`HeadHeld` is the transport a request's uvicorn cycle writes through until its first body
(`EdgeHttpProtocol` puts it there): the cycle's first write (its head, or an interim
`100 Continue`) is held until its next write, and the two leave as one; the later writes go to
the transport directly. When nothing follows within the same step of the loop (a stream whose
first bytes take time), the held bytes leave alone at the loop's next turn: a head never waits
for a body that is not ready.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

__all__ = ["HeadHeld"]


class Cycle(Protocol):
    """What of uvicorn's request cycle (`RequestResponseCycle`) the hold uses: its transport."""

    transport: asyncio.Transport


class HeadHeld:
    """Put in place of `cycle`'s transport until the cycle's first write (its head, or an
    interim `100 Continue`) has left with the next one, or alone at the loop's next turn; the
    cycle then writes to its transport directly again. uvicorn's cycle uses `write`, `close`
    and `is_closing` of its transport. `flush` writes what is held now (nothing when nothing
    is): before a write of the connection's own (uvicorn's 400 for a malformed request), so
    that the order stays."""

    __slots__ = ("_cycle", "_held", "_transport")

    def __init__(self, cycle: Cycle) -> None:
        self._cycle = cycle
        self._transport = cycle.transport
        self._held: bytes | None = None
        cycle.transport = self  # type: ignore[assignment]  # has what the cycle uses

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:  # the first write
            self._held = data
            asyncio.get_running_loop().call_soon(self.flush)
            return
        self._release()
        self._transport.writelines((held, data))  # one `writev` on uvloop, nothing copied

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._release()
            if not self._transport.is_closing():  # the connection went: nothing to say
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def release_to(self, transport: Any) -> None:
        """Once released (or now, if it was), the cycle writes to `transport` instead (one with
        what the cycle uses)."""
        current: object = self._cycle.transport
        if current is self:
            self._transport = transport
        else:
            self._cycle.transport = transport

    def _release(self) -> None:
        self._held = None
        self._cycle.transport = self._transport
