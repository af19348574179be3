"""A response's head and its first body bytes in one write.

uvicorn writes a response's head when the app sends `http.response.start` and each body part when
it sends `http.response.body`: two `write`s, so two `send()`s on the socket and often two
wake-ups of the client, for responses whose body follows their head at once. Most do: a JSON
answer's body is sent right after its head, and a stream's head is sent only once the router's
first chunks are in hand (`_routes_chat.sse_stream`), with them right behind it.

`HeadHeld` is the transport a request's uvicorn cycle writes through (`EdgeHttpProtocol` puts it
there): the cycle's first write (its head, or an interim `100 Continue`) is held until its next
write, and the two leave as one. When nothing follows within the same step of the loop (a stream
whose first bytes take time), the held bytes leave alone at the loop's next turn: a head never
waits for a body that is not ready.
"""

from __future__ import annotations

import asyncio

__all__ = ["HeadHeld"]


class HeadHeld:
    """The transport `transport` as one request's cycle uses it (`write`, `close`,
    `is_closing`), with the cycle's first write held until its next one or the loop's next
    turn. `flush` writes what is held (nothing when nothing is), before a write of the
    connection's own (uvicorn's 400 for a malformed request) so that the order stays."""

    __slots__ = ("_held", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._started = False  # the first write came (held, or left)

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))  # one `writev` on uvloop, no copy
        elif self._started:
            self._transport.write(data)
        else:
            self._started = True
            self._held = data
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():  # the connection went: nothing to say
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()
