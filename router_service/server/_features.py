"""RouterService's methods of the APIs beyond chat (stored and background responses,
conversations, files and batches, Realtime and its secrets and WebRTC calls), each served by its
feature servicer, whose module, and those it needs, the feature's first call imports.

An idle router, or one that answers chat calls only, holds none of them (their modules and the
runtime's records: ~1–2 MiB of RSS, benchmarks/README.md "Where idle RSS goes"). The method table
stays whole: `RouterServicer` has every method from the start (the generic handler is built
from it); a method looks its feature servicer up by name, one dictionary read per call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from importlib import import_module
from typing import Any

import grpc

from clients import to_grpc_status
from router_service.server._errors import error_details

__all__ = ["FeatureMethods"]


class _Deferred:
    """A method of the feature servicer `feature` (a class of `router_service.server.<module>`),
    as `RouterServicer`'s."""

    def __init__(self, module: str, feature: str, *, streaming: bool = False) -> None:
        self._key = (module, feature)
        self._streaming = streaming
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, servicer: Any, owner: type | None = None) -> Any:
        if servicer is None:
            return self
        method = _method(servicer, self._key, self._name)
        if not self._streaming:

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                return await (await _served(method, context))(request, context)

            return unary

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            # An async generator, as every streaming handler (OpenTelemetry's aio interceptor).
            served = await _served(method, context)
            async with aclosing(served(request, context)) as events:
                async for event in events:
                    yield event

        return streaming


def _method(servicer: Any, key: tuple[str, str], name: str) -> Callable[[], Any]:
    """The lookup of `name` on the servicer's feature servicer `key`, built by the first."""
    features: dict[tuple[str, str], Any] = servicer.features

    def method() -> Any:
        feature = features.get(key)
        if feature is None:
            module, cls = key
            feature = getattr(import_module(f"router_service.server.{module}"), cls)(servicer)
            features[key] = feature
        return getattr(feature, name)

    return method


async def _served(method: Callable[[], Any], context: grpc.aio.ServicerContext) -> Any:
    """`method()`; a feature servicer that cannot be built (its module failing to import) ends
    the call as any handler's unexpected error does (`error_details`: INTERNAL, logged), not
    with gRPC's bare UNKNOWN quoting the exception. The next call tries anew."""
    try:
        return method()
    except Exception as exc:
        await context.abort_with_status(to_grpc_status(error_details(exc)))
        raise


_RESPONSES = ("_responses_servicer", "ResponsesServicer")
_FILES = ("_files_servicer", "FilesServicer")
_CALLS = ("_realtime_calls", "RealtimeCallsServicer")


class FeatureMethods:
    """`RouterServicer`'s methods served by feature servicers, and those servicers once built
    (`features`, by module and class)."""

    features: dict[tuple[str, str], Any]

    StoreResponse = _Deferred(*_RESPONSES)
    LoadResponses = _Deferred(*_RESPONSES)
    DeleteResponse = _Deferred(*_RESPONSES)
    StartBackgroundResponse = _Deferred(*_RESPONSES)
    CancelResponse = _Deferred(*_RESPONSES)
    ResumeResponse = _Deferred(*_RESPONSES, streaming=True)
    CreateConversation = _Deferred(*_RESPONSES)
    LoadConversation = _Deferred(*_RESPONSES)
    UpdateConversation = _Deferred(*_RESPONSES)
    DeleteConversation = _Deferred(*_RESPONSES)
    UploadFile = _Deferred(*_FILES)
    ListFiles = _Deferred(*_FILES)
    GetFile = _Deferred(*_FILES)
    GetFileContent = _Deferred(*_FILES)
    DeleteFile = _Deferred(*_FILES)
    CreateUpload = _Deferred(*_FILES)
    AddUploadPart = _Deferred(*_FILES)
    CompleteUpload = _Deferred(*_FILES)
    CancelUpload = _Deferred(*_FILES)
    CreateBatch = _Deferred(*_FILES)
    GetBatch = _Deferred(*_FILES)
    ListBatches = _Deferred(*_FILES)
    CancelBatch = _Deferred(*_FILES)
    Realtime = _Deferred("_realtime", "RealtimeServicer", streaming=True)
    CreateRealtimeClientSecret = _Deferred("_realtime_secrets", "RealtimeSecretsServicer")
    CreateRealtimeCall = _Deferred(*_CALLS)
    HangupRealtimeCall = _Deferred(*_CALLS)
