"""The router's services served by their generic handlers only.

The generated `add_*Servicer_to_server` functions give the server each service twice: a generic
handler (`add_generic_rpc_handlers`) and every method again as a registered method
(`add_registered_method_handlers`). For each registered method grpc.aio keeps a task waiting for
that method's next call, and waits on all of them for every call that arrives (an
`asyncio.wait` over ~46 tasks per request: ~130 Python calls and their done-callbacks, 8 % of the
Python calls of a plain chat request through edge + router, and one more share with every RPC
added). The generic handler serves the same methods, with the same interceptors, through one
dictionary lookup, so only it is added (benchmarks/README.md, 2026-12-05)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import grpc

__all__ = ["add_generic"]

S = TypeVar("S")


class _GenericOnly:
    """`server` as a generated `add_*_to_server` sees it: its generic handlers added, its
    registered methods left out."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        """Left out: the generic handler added before serves these methods."""


def add_generic(
    add: Callable[[S, grpc.aio.Server], None], servicer: S, server: grpc.aio.Server
) -> None:
    """`add(servicer, server)` (a generated `add_*_to_server`), with its generic handler only."""
    add(servicer, cast(grpc.aio.Server, _GenericOnly(server)))
