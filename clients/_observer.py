"""What sees the calls of a ``RouterClient`` (tracing): the observer and one observed call."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["CallObserver", "ObservedCall"]


class ObservedCall(Protocol):
    """One call as a :class:`CallObserver` sees it (for tracing: its span)."""

    # What the call sends (the observer may add to it): a `-bin` key's value is bytes.
    metadata: tuple[tuple[str, str | bytes], ...]

    def attach(self, call: Any) -> None:
        """The call started; the observer learns its end from its done callback."""

    def fail(self, exc: BaseException) -> None:
        """The call could not start."""


class CallObserver(Protocol):
    """Sees every call of a :class:`RouterClient` (``observer=``), e.g. to trace it.

    The cheap alternative to a grpc.aio client interceptor, which makes every call run through
    an extra task and Python wrappers around the call object (with tracing on, ~15 % of the
    edge's CPU per request went there). The call object stays grpc's own.
    """

    def start(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> ObservedCall:
        """``method`` is the full gRPC name (``/switchboard.v1.RouterService/Chat``);
        ``metadata`` the pairs the call sends, a ``-bin`` key's value as bytes."""
        ...
