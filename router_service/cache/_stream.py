"""Streams and the cache: a fresh stream recorded on its way to the caller, a kept one replayed.

A stream is kept as it was relayed (its chunks and its summary), not rebuilt from a unary
answer: what a streaming caller reads (role chunk, deltas, tool-call fragments, the usage chunk
when asked for) is then the same on a HIT as it was on the MISS.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.cache._cache import CacheLookup

__all__ = ["StreamRecorder", "replay"]


class StreamRecorder:
    """Marks a fresh stream's route events with the cache's status and records its chunks; the
    answer is complete (and kept by `finish`) once its summary passed without an error."""

    __slots__ = ("_bytes", "_chunks", "_lookup", "_summary", "_usable")

    def __init__(self, lookup: CacheLookup) -> None:
        self._lookup = lookup
        self._chunks: list[chat_pb2.ChatCompletionChunk] = []
        self._summary: pb.StreamSummary | None = None
        self._bytes = 0
        self._usable = True

    def see(self, event: pb.ChatStreamResponse) -> None:
        kind = event.WhichOneof("event")
        if kind == "route":
            self._lookup.mark(event.route)
        elif kind == "summary":
            self._lookup.mark(event.summary.route)
            self._summary = event.summary
        elif not self._usable:
            return
        elif kind == "chunk":
            self._record((event.chunk,))
        elif kind == "chunks":
            self._record(event.chunks.chunks)
        elif kind == "error":
            self._usable = False

    def _record(self, chunks: Iterable[chat_pb2.ChatCompletionChunk]) -> None:
        for chunk in chunks:
            self._bytes += chunk.ByteSize()
            self._chunks.append(chunk)
        if self._bytes > self._lookup.max_entry_bytes:  # not kept: stop holding it
            self._usable = False
            self._chunks.clear()

    async def finish(self) -> None:
        """Keep the stream if it was relayed whole."""
        if not self._usable or self._summary is None:
            return
        stream = pb.CachedStream(chunks=self._chunks, summary=self._summary)
        await self._lookup.keep(pb.CachedAnswer(stream=stream))


def replay(
    answer: pb.CachedAnswer, lookup: CacheLookup, *, batch: bool
) -> Iterator[pb.ChatStreamResponse]:
    """A kept stream's events: its route (HIT), its chunks (in one `chunks` event for a caller
    that reads batches), its summary (no time to a first token: nothing was waited for)."""
    kept = answer.stream
    summary = pb.StreamSummary()
    summary.CopyFrom(kept.summary)
    lookup.served(answer, summary.route)
    summary.ClearField("time_to_first_token_ms")
    yield pb.ChatStreamResponse(route=summary.route)
    chunks = kept.chunks
    if batch and len(chunks) > 1:
        yield pb.ChatStreamResponse(chunks=pb.ChunkBatch(chunks=chunks))
    else:
        for chunk in chunks:
            yield pb.ChatStreamResponse(chunk=chunk)
    yield pb.ChatStreamResponse(summary=summary)
