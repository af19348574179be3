"""The server side of one in-process call: the ``grpc.aio.ServicerContext`` its handler sees."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from clients._local_limits import trailers_refused

if TYPE_CHECKING:
    from clients._local_call import LocalCall

__all__ = ["PEER", "LocalContext"]

# What `peer()` says of an in-process caller (the wire's are `ipv4:127.0.0.1:54321`): audit
# lines name it; the caller's own address travels in `x-forwarded-for`, as over the wire.
PEER = "in-process"


class LocalContext:
    """A handler's view of its call, as grpc.aio's ``ServicerContext`` (the part handlers and
    interceptors use): metadata in and out, status, deadline, abort."""

    __slots__ = ("_aborted", "_call", "_code", "_deadline", "_details", "_metadata", "_trailing")

    def __init__(
        self, call: LocalCall, metadata: tuple[tuple[str, Any], ...], deadline: float | None
    ) -> None:
        self._call = call
        self._metadata = metadata
        self._deadline = deadline
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None
        self._trailing: tuple[tuple[str, Any], ...] = ()
        self._aborted = False

    def invocation_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self._metadata

    def peer(self) -> str:
        return PEER

    def peer_identities(self) -> None:
        return None

    def peer_identity_key(self) -> None:
        return None

    def auth_context(self) -> dict[str, Any]:
        return {}

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(self._deadline - asyncio.get_running_loop().time(), 0.0)

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """End the call with `code` at once (the caller sees it before the handler's cleanup
        runs), then raise ``AbortError`` into the handler; as grpc.aio, details and trailing
        metadata set before are kept when none are given."""
        if self._aborted:
            raise grpc.aio.UsageError("Abort already called!")
        self._aborted = True
        if code is grpc.StatusCode.OK:
            code = grpc.StatusCode.UNKNOWN  # grpc.aio's answer to an abort with OK
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        if details:
            self._details = details
        self._code = code
        self._call.finish(*self._status(code, self._details or ""))
        raise grpc.aio.AbortError("Locally aborted.")

    async def abort_with_status(self, status: grpc.Status) -> None:
        await self.abort(status.code, status.details, status.trailing_metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str | None:
        return self._details

    def set_trailing_metadata(self, trailing_metadata: Sequence[tuple[str, Any]]) -> None:
        self._trailing = tuple(trailing_metadata)

    def trailing_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self._trailing

    async def write(self, message: Any) -> None:
        """One message of a streamed answer, as a yielded one (held while its caller is
        behind)."""
        await self._call.answer(message)

    async def send_initial_metadata(self, initial_metadata: Sequence[tuple[str, Any]]) -> None:
        self._call.initial = grpc.aio.Metadata(*initial_metadata)

    def set_compression(self, compression: grpc.Compression) -> None:
        """Nothing is compressed in-process."""

    def disable_next_message_compression(self) -> None:
        """Nothing is compressed in-process."""

    def cancelled(self) -> bool:
        """Whether the caller cancelled the call or its deadline passed."""
        return self._call.ended_by_caller

    def done(self) -> bool:
        return self._call.handled()

    def add_done_callback(self, callback: Callable[[LocalContext], None]) -> None:
        self._call.add_done_callback(lambda _call: callback(self))

    def ended(self) -> tuple[grpc.StatusCode, str, tuple[tuple[str, Any], ...]]:
        """The status of a handler that returned: the code it set (OK if none)."""
        return self._status(self._code or grpc.StatusCode.OK, self._details or "")

    def failed(self, exc: Exception) -> tuple[grpc.StatusCode, str, tuple[tuple[str, Any], ...]]:
        """The status of a handler that raised: its code if it set one (else UNKNOWN) and
        grpc.aio's details, which name the exception."""
        code = self._code if self._code not in (None, grpc.StatusCode.OK) else None
        details = f"Unexpected {type(exc)}: {exc}"
        return self._status(code or grpc.StatusCode.UNKNOWN, details)

    def _status(
        self, code: grpc.StatusCode, details: str
    ) -> tuple[grpc.StatusCode, str, tuple[tuple[str, Any], ...]]:
        """`code` and `details` with the trailers set; trailers over the caller's metadata
        limit end the call RESOURCE_EXHAUSTED without them, as grpc removes such a stream."""
        too_large = trailers_refused(self._trailing, details, self._call.metadata_limit)
        if too_large is not None:
            return grpc.StatusCode.RESOURCE_EXHAUSTED, too_large, ()
        return code, details, self._trailing
