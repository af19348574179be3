"""The wrapped method handlers of one grpc.aio server interceptor, made once per method.

grpc.aio asks every interceptor for a method's handler on every call. The inner interceptors hand
back the same handler object call after call, so an interceptor that wraps it keeps its wrapper
per method and makes a new one only when the inner handler changed. Registered methods only
(grpc hands an unknown method no handler), so it holds a few dozen entries at most.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["WrappedHandlers"]


class WrappedHandlers:
    """``wrap(method, handler)``'s result per method, as long as the handler is the same."""

    __slots__ = ("_by_method", "_wrap")

    def __init__(self, wrap: Callable[[str, Any], Any]) -> None:
        self._wrap = wrap
        self._by_method: dict[str, tuple[Any, Any]] = {}  # method -> (the handler, its wrapper)

    def wrapped(self, method: str, handler: Any) -> Any:
        """The wrapper of `handler`, the handler of `method`."""
        cached = self._by_method.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapper = self._wrap(method, handler)
        self._by_method[method] = (handler, wrapper)
        return wrapper
