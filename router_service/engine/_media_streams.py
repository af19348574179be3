"""The Executor's media streams (RouterService.MediaStream): speech's audio as it arrives, and
the events of streamed transcriptions and images, with a chat stream's guarantees: failures
before the first piece fail over invisibly (the attempt loop), a StreamGuard watches the rest
(heartbeats, stall window, truncation: an event stream that ends without its `*.done` or
`*.completed` event), errors after the commit end the stream with an error event, and the
caller going away closes the upstream call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass

import orjson

from clients import asks_stream
from clients.switchboard.v1 import chat_pb2, media_pb2, router_service_pb2, routing_pb2
from router_service.clock import Clock
from router_service.config import StreamsConfig
from router_service.engine._afterwork import Afterwork, FailedEnd
from router_service.engine._attempts import Attempt, Walked
from router_service.engine._met import Inexpressible
from router_service.engine._model import Deployment, Plan, RequestContext
from router_service.engine._planner import Planner
from router_service.engine._stream_failures import StreamEnds, timed_out
from router_service.engine._stream_guard import Idle, StreamGuard
from router_service.errors import InvalidRequestError, UpstreamFailure
from router_service.guardrails import TranscriptScreen
from router_service.keys import KeyLease
from router_service.outcomes import Outcome
from router_service.providers import MediaCall, MediaPiece, reads_cancel_their_task

__all__ = ["MediaStreams", "asks_events"]

MediaEvent = router_service_pb2.MediaStreamResponse


@dataclass(slots=True)
class _OpenMedia:
    pieces: AsyncIterator[MediaPiece]
    first: MediaPiece
    first_at: float
    lease: KeyLease
    began: float  # when its attempt began: what the deployment's latency is measured from


class MediaStreams(StreamEnds):
    """`Executor.media_stream`, a mixin over the Executor's attempt loop (as `_run`)."""

    planner: Planner
    _clock: Clock
    _streams: StreamsConfig
    _afterwork: Afterwork

    async def _run(  # the Executor's
        self,
        ctx: RequestContext,
        plan: Plan,
        attempt: Attempt[_OpenMedia],
        *,
        tokens: int = 0,
        record_success: bool = True,
        params: chat_pb2.ChatParams | None = None,
        cannot: Inexpressible | None = None,
    ) -> Walked[_OpenMedia]:
        raise NotImplementedError

    async def media_stream(
        self, params: media_pb2.MediaParams, ctx: RequestContext, *, tokens: int = 0
    ) -> AsyncGenerator[MediaEvent, None]:
        """Route event, chunks (heartbeats while idle), then a summary — or an error event.
        `ctx.answers`, set for a transcription, screens its events as they go."""
        events = asks_events(params)

        async def attempt(
            deployment: Deployment, lease: KeyLease, stack: AsyncExitStack
        ) -> _OpenMedia:
            return await self._open_media(ctx, params, deployment, lease, stack)

        def cannot(deployment: Deployment) -> UpstreamFailure | None:
            return deployment.adapter.cannot_stream_media(params.operation, events)

        plan = await self.planner.plan(ctx)
        started = self._clock.monotonic()
        screen = None if ctx.answers is None else TranscriptScreen(ctx.answers)
        opened, deployment, stack = await self._run(
            ctx, plan, attempt, tokens=tokens, record_success=False, cannot=cannot
        )
        async with FailedEnd(stack):  # a failure's: its own error wins
            usage: chat_pb2.Usage | None = None
            images = _Images(params, opened.first)
            relay = self._relay_media(ctx, deployment, opened, screen, images)
            async with aclosing(relay):
                async for event in relay:
                    if isinstance(event, chat_pb2.Usage):
                        usage = event
                    else:
                        yield event
            summary = await self._summary(
                ctx, deployment, opened.lease, usage, started, opened.first_at, opened.began
            )
            if summary is None:
                return  # the relay ended with an error event (and recorded the failure)
            done = stack.pop_all()
        try:
            yield MediaEvent(summary=summary)
        finally:
            await self._afterwork.close(done)

    async def _open_media(
        self,
        ctx: RequestContext,
        params: media_pb2.MediaParams,
        deployment: Deployment,
        lease: KeyLease,
        stack: AsyncExitStack,
    ) -> _OpenMedia:
        """Open the upstream stream and read its first piece, within the deployment's
        first-chunk timeout (capped by the caller's deadline)."""
        timeouts, began = deployment.timeouts, self._clock.monotonic()
        call = MediaCall(
            deployment.upstream_model,
            lease.key.secret,
            params,
            ctx.attempt_timeout(timeouts.total_s),
        )
        try:
            async with self._clock.timeout(ctx.attempt_timeout(timeouts.first_chunk_s)):
                pieces = await stack.enter_async_context(deployment.adapter.stream_media(call))
                async for piece in pieces:
                    return _OpenMedia(pieces, piece, self._clock.monotonic(), lease, began)
        except TimeoutError as exc:
            raise timed_out(ctx, f"no first chunk within {timeouts.first_chunk_s:g}s") from exc
        raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "upstream stream ended before any content")

    def _guard(self, deployment: Deployment) -> StreamGuard:
        """The guard of a stream from `deployment` (chat's and media's)."""
        timeouts, heartbeat_s = deployment.timeouts, self._streams.heartbeat_s
        apart = reads_cancel_their_task(deployment.adapter.http)
        return StreamGuard(
            self._clock,
            stall_s=timeouts.stall_s,
            heartbeat_s=heartbeat_s,
            apart=apart,
            quiet_s=timeouts.total_s,  # signs of life stave off a stall for so long at most
        )

    async def _relay_media(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        opened: _OpenMedia,
        screen: TranscriptScreen | None,
        images: _Images,
    ) -> AsyncGenerator[MediaEvent | chat_pb2.Usage, None]:
        """The committed part of a media stream, from the route event on (as `_relay`);
        heartbeats until the last of `images` was made."""
        guard = self._guard(deployment)
        first = opened.first
        # Bytes (speech's audio) end with the body; an event stream with its last event.
        finished = first.event is None or first.final
        started = self._clock.monotonic()
        try:
            yield MediaEvent(route=ctx.route(deployment))
            for event in _piece_events([first], screen):
                yield event
            follow = guard.follow(opened.pieces, finished=finished, ends=_is_final, choices=images)
            async with aclosing(follow) as items:
                async for item in items:
                    if isinstance(item, Idle):
                        idle_ms = int(item.idle_s * 1000)
                        yield MediaEvent(heartbeat=router_service_pb2.Heartbeat(idle_ms=idle_ms))
                        continue
                    for event in _piece_events(item, screen):
                        yield event
        except (asyncio.CancelledError, GeneratorExit):
            ctx.record(deployment, opened.lease.key.fingerprint, Outcome.CANCELLED, started)
            raise
        except UpstreamFailure as failure:
            error = await self._failed_midstream(ctx, deployment, opened.lease, failure, started)
            yield MediaEvent(error=error)
        except InvalidRequestError as refused:  # the answer's guardrails withheld the rest
            fingerprint = opened.lease.key.fingerprint
            ctx.record(deployment, fingerprint, Outcome.CONTENT_FILTERED, started)
            yield MediaEvent(error=_refusal(refused, deployment))
        finally:
            if ctx.answers is not None:
                ctx.answers.report()


def asks_events(params: media_pb2.MediaParams) -> bool:
    """Whether the caller asked for an event stream (`stream: true`, `stream_format: "sse"`)
    rather than speech's audio bytes."""
    fields = orjson.loads(params.params_json) if params.params_json else {}
    return asks_stream(fields) or fields.get("stream_format") == "sse"


class _Images:
    """How many of a stream's `n` images (one for any other event stream, none for bytes: they
    end with the body) are still to be made: each ends with its `*.completed` event, and an
    upstream that ends before the last cut the stream."""

    __slots__ = ("left",)

    def __init__(self, params: media_pb2.MediaParams, first: MediaPiece) -> None:
        n = orjson.loads(params.params_json).get("n") if params.params_json else None
        n = str(n) if isinstance(n, int | str) else ""  # an edit's form sends "2"
        count = int(n) if n.isascii() and n.isdigit() and len(n) <= 2 else 1  # OpenAI: 1 to 10
        self.left = 0 if first.event is None else max(1, count) - first.final

    def add(self, piece: MediaPiece) -> None:
        self.left -= piece.final

    def running(self) -> bool:
        return self.left > 0


def _is_final(piece: MediaPiece) -> bool:
    return piece.final


def _piece_events(
    pieces: list[MediaPiece], screen: TranscriptScreen | None
) -> list[MediaEvent | chat_pb2.Usage]:
    """Pieces as stream events (a screened transcript's events as the screen releases them);
    each usage goes first, for the summary."""
    events: list[MediaEvent | chat_pb2.Usage] = [p.usage for p in pieces if p.usage is not None]
    for piece in pieces:
        if screen is None or piece.event is None:
            if screen is not None:  # an answer not streamed after all: screened whole
                screen.whole(piece.chunk)
            events.append(MediaEvent(chunk=piece.chunk))
            continue
        for index, data in enumerate(screen.event(piece.event)):
            chunk = media_pb2.MediaChunk(event_json=orjson.dumps(data).decode())
            chunk.event = piece.chunk.event
            if index == 0:
                chunk.content_type = piece.chunk.content_type
            events.append(MediaEvent(chunk=chunk))
    return events


def _refusal(
    refused: InvalidRequestError, deployment: Deployment
) -> router_service_pb2.StreamError:
    return router_service_pb2.StreamError(
        message=refused.message,
        type=refused.openai_type,
        code=refused.code or "",
        outcome=routing_pb2.Outcome.ValueType(Outcome.CONTENT_FILTERED.value),
        provider=deployment.provider,
    )
