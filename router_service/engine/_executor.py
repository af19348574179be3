"""Executor: one caller request → attempts → an answer, a stream, or one typed error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass
from typing import TypeVar

from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2, router_service_pb2
from router_service.clock import Clock
from router_service.config import StreamsConfig
from router_service.engine._afterwork import Afterwork, FailedEnd
from router_service.engine._attempts import Attempt, AttemptRunner, Walked
from router_service.engine._media_streams import MediaStreams
from router_service.engine._met import Inexpressible
from router_service.engine._model import Deployment, Plan, RequestContext
from router_service.engine._planner import Planner
from router_service.engine._realtime import RealtimeSessions
from router_service.engine._realtime_calls import RealtimeCalls
from router_service.engine._reasoning_hidden import (
    NO_CONTENT,
    QuietBeats,
    hidden_opening,
    hides_reasoning,
    without_answer_reasoning,
    without_chunk_reasoning,
)
from router_service.engine._sent import params_for
from router_service.engine._stops import (
    ChunkFilter,
    cannot_enforce,
    choices_of,
    cut_completion,
    has_stops,
    stops_for,
    stream_filters,
)
from router_service.engine._stream_failures import timed_out
from router_service.engine._stream_guard import Choices, Idle, is_meaningful
from router_service.engine._stream_usage import asks_usage, chunk_events
from router_service.engine._tokens import estimate_chat_tokens, estimate_embedding_tokens
from router_service.engine._tool_fees import bill_answer, billed_in
from router_service.errors import NoCapacityError, UpstreamFailure
from router_service.keys import KeyLease
from router_service.outcomes import Outcome
from router_service.providers import EmbedCall, MediaCall
from router_service.providers._base import UPSTREAM_ALIVE
from router_service.providers._batched import Answered

log = logging.getLogger("switchboard.engine")

T = TypeVar("T")
StreamEvent = router_service_pb2.ChatStreamResponse
# Role-only chunks buffered before the first meaningful one; more than this is not an opening.
_MAX_OPENING_CHUNKS = 8


@dataclass(slots=True)
class _OpenStream:
    chunks: AsyncIterator[chat_pb2.ChatCompletionChunk]
    opening: list[chat_pb2.ChatCompletionChunk]
    first_at: float
    lease: KeyLease
    began: float  # when its attempt began: what the deployment's latency is measured from


class Executor(MediaStreams, RealtimeSessions, RealtimeCalls):
    def __init__(
        self,
        planner: Planner,
        runner: AttemptRunner,
        clock: Clock,
        streams: StreamsConfig,
        afterwork: Afterwork,
    ) -> None:
        self.planner = planner
        self._runner = runner
        self._clock = clock
        self._streams = streams
        self._afterwork = afterwork
        # Models refusing calls with NO_CAPACITY now, and how many: one log line when a model
        # begins to refuse and one when it serves again, not one per refused call.
        self._refusing: dict[str, int] = {}

    async def _run(
        self,
        ctx: RequestContext,
        plan: Plan,
        attempt: Attempt[T],
        *,
        tokens: int = 0,
        record_success: bool = True,
        params: chat_pb2.ChatParams | None = None,
        cannot: Inexpressible | None = None,
    ) -> Walked[T]:
        """`AttemptRunner.run`, with NO_CAPACITY spells logged. A chat's `params` (or `cannot`)
        let it pass over the deployments whose format cannot express them."""
        model = ctx.requested_model
        if params is not None:
            cannot = _cannot_express(params)
        try:
            walked = await self._runner.run(
                ctx, plan, attempt, tokens=tokens, record_success=record_success, cannot=cannot
            )
        except NoCapacityError as exc:
            refused = self._refusing.get(model, 0)
            if not refused:
                log.warning("`%s` refuses calls: NO_CAPACITY (%s)", model, exc.message)
            self._refusing[model] = refused + 1
            raise
        refused = self._refusing.pop(model, 0)
        if refused:
            log.info("`%s` serves again after %d call(s) refused with NO_CAPACITY", model, refused)
        return walked

    async def chat(
        self, params: chat_pb2.ChatParams, ctx: RequestContext
    ) -> router_service_pb2.ChatResponse:
        async def attempt(
            deployment: Deployment, lease: KeyLease, _: AsyncExitStack
        ) -> chat_pb2.ChatCompletion:
            timeout = ctx.attempt_timeout(deployment.timeouts.total_s)
            sent, restoring = params_for(deployment, ctx.sending(params))
            call = deployment.chat_call(lease.key.secret, sent, timeout, ctx)
            try:
                async with asyncio.timeout(timeout):
                    completion = await deployment.adapter.chat(call)
            except TimeoutError as exc:
                raise timed_out(ctx, "upstream timed out") from exc
            if restoring:
                restoring.completion(completion)
            if completion.HasField("usage"):
                await lease.settle_tokens(completion.usage.total_tokens)
            return completion

        plan = await self.planner.plan_chat(ctx, params)
        ctx.chat = params
        completion, deployment, stack = await self._run(
            ctx, plan, attempt, tokens=estimate_chat_tokens(params), params=params
        )
        await self._afterwork.close(stack)  # the release and the session mark: after
        # Unpriced (the common case): the None check alone, no usage looked at.
        priced = deployment.price is not None and completion.HasField("usage")
        usage = completion.usage if priced else None
        if usage is not None and (billed := ctx.bills(deployment)) is not None:
            bill_answer(billed, completion)
        route = ctx.route(deployment, usage)
        if has_stops(params) and (stops := stops_for(deployment, params)):
            cut_completion(completion, stops)  # the stops past the upstream's cap
        # The caller's `reasoning.exclude`, before anyone sees it (no extras: nothing to read).
        if params.extra_json and hides_reasoning(params):
            without_answer_reasoning(completion)
        if ctx.answers is not None:  # before the response cache keeps it or the caller sees it
            route.guardrails.extend(ctx.answers.completion(completion))
        return router_service_pb2.ChatResponse(completion=completion, route=route)

    async def embed(
        self, params: embeddings_pb2.EmbeddingParams, ctx: RequestContext
    ) -> router_service_pb2.EmbedResponse:
        async def attempt(
            deployment: Deployment, lease: KeyLease, _: AsyncExitStack
        ) -> embeddings_pb2.EmbeddingResult:
            timeout = ctx.attempt_timeout(deployment.timeouts.total_s)
            model = deployment.upstream_model
            sent = ctx.embedding_sent(params)
            # A shortened retry's calls: the key's too, none of the whole input's answers reused.
            own = answered if sent is params else Answered() if sent.HasField("texts") else None
            kept = own and own.attempt(deployment.adapter.kind, model, lease)
            call = EmbedCall(model, lease.key.secret, sent, timeout, kept)
            try:
                async with asyncio.timeout(timeout):
                    result = await deployment.adapter.embed(call)
            except TimeoutError as exc:
                raise timed_out(ctx, "upstream timed out") from exc
            if result.usage.prompt_tokens:  # the Gemini API reports none: the estimate stays
                await lease.settle_tokens(result.usage.prompt_tokens)
            return result

        answered = Answered() if params.HasField("texts") else None  # kept across failovers
        plan = await self.planner.plan(ctx)
        tokens = estimate_embedding_tokens(params)
        result, deployment, stack = await self._run(ctx, plan, attempt, tokens=tokens)
        await self._afterwork.close(stack)
        # An embedding's tokens are all input: its usage as a chat's without completion tokens.
        priced = deployment.price is not None and result.HasField("usage")
        usage = chat_pb2.Usage(prompt_tokens=result.usage.prompt_tokens) if priced else None
        return router_service_pb2.EmbedResponse(result=result, route=ctx.route(deployment, usage))

    async def media(
        self, params: media_pb2.MediaParams, ctx: RequestContext, *, tokens: int = 0
    ) -> router_service_pb2.MediaResponse:
        """One moderation, image, speech, transcription, translation or rerank. Deployments
        whose kind has no such endpoint are passed over before a key is leased; `tokens`: the
        request's estimate."""

        async def attempt(
            deployment: Deployment, lease: KeyLease, _: AsyncExitStack
        ) -> media_pb2.MediaResult:
            timeout = ctx.attempt_timeout(deployment.timeouts.total_s)
            call = MediaCall(
                deployment.upstream_model, lease.key.secret, params, timeout, ctx.requested_model
            )
            try:
                async with asyncio.timeout(timeout):
                    result = await deployment.adapter.media(call)
            except TimeoutError as exc:
                raise timed_out(ctx, "upstream timed out") from exc
            if result.HasField("usage"):
                await lease.settle_tokens(result.usage.total_tokens)
            return result

        def cannot(deployment: Deployment) -> UpstreamFailure | None:
            return deployment.adapter.cannot_media(params.operation)

        plan = await self.planner.plan(ctx)
        result, deployment, stack = await self._run(
            ctx, plan, attempt, tokens=tokens, cannot=cannot
        )
        await self._afterwork.close(stack)
        usage = result.usage if deployment.price is not None and result.HasField("usage") else None
        return router_service_pb2.MediaResponse(result=result, route=ctx.route(deployment, usage))

    async def chat_stream(
        self, params: chat_pb2.ChatParams, ctx: RequestContext, *, batch: bool = False
    ) -> AsyncGenerator[StreamEvent, None]:
        """Route event, chunks (heartbeats while idle), then a summary — or an error event.
        `batch`: the caller reads `chunks` events (ChatStreamRequest.batch_chunks).

        Failures before the first meaningful chunk fail over invisibly (inside the attempt loop)
        and, when nothing is left, raise a typed error before anything was yielded."""

        async def attempt(
            deployment: Deployment, lease: KeyLease, stack: AsyncExitStack
        ) -> _OpenStream:
            return await self._open(ctx, params, deployment, lease, stack)

        plan = await self.planner.plan_chat(ctx, params)
        started, ctx.chat = self._clock.monotonic(), params
        screen = None if ctx.answers is None else ctx.answers.stream(choices_of(params))
        opened, deployment, stack = await self._run(
            ctx,
            plan,
            attempt,
            tokens=estimate_chat_tokens(params),
            record_success=False,
            params=params,
        )
        filters, hidden = stream_filters(deployment, params, screen, hides_reasoning(params))
        async with FailedEnd(stack):  # a failure's: its own error wins
            usage: chat_pb2.Usage | None = None
            # Closed here, not by the garbage collector: the guard's reader task must be gone
            # before the stack closes the upstream response it reads.
            shown = (asks_usage(params), hidden)
            relay = self._relay(ctx, deployment, opened, batch, filters, shown)
            async with aclosing(relay):
                async for event in relay:
                    if isinstance(event, chat_pb2.Usage):
                        usage = event
                    else:
                        yield event
                    del event  # not held while the stream waits for its next
            summary = await self._summary(
                ctx, deployment, opened.lease, usage, started, opened.first_at, opened.began
            )
            if summary is None:
                return  # the relay ended with an error event (and recorded the failure)
            # The upstream stream has ended: what is left (its connection back to the pool, the
            # release, the session mark) need not hold up the end of the caller's stream.
            done = stack.pop_all()
        try:
            yield StreamEvent(summary=summary)
        finally:
            await self._afterwork.close(done)

    async def _open(
        self,
        ctx: RequestContext,
        params: chat_pb2.ChatParams,
        deployment: Deployment,
        lease: KeyLease,
        stack: AsyncExitStack,
    ) -> _OpenStream:
        """Open the upstream stream, read up to its first meaningful chunk in first_chunk_s."""
        timeouts = deployment.timeouts
        sent, restoring = params_for(deployment, ctx.sending(params))
        timeout = ctx.attempt_timeout(timeouts.total_s)
        call = deployment.chat_call(lease.key.secret, sent, timeout, ctx)
        opening: list[chat_pb2.ChatCompletionChunk] = []
        clock, began = self._clock, self._clock.monotonic()
        latest = began + timeout  # a server's pings may go on while its model is stuck
        try:
            async with clock.timeout(ctx.attempt_timeout(timeouts.first_chunk_s)) as timer:
                chunks = await stack.enter_async_context(deployment.adapter.stream_chat(call))
                if restoring:
                    chunks = restoring.chunks(chunks)
                async for chunk in chunks:
                    if chunk is UPSTREAM_ALIVE:  # at work: the window again, to total_s at most
                        timer.reschedule(min(clock.monotonic() + timeouts.first_chunk_s, latest))
                        continue
                    opening.append(chunk)
                    if is_meaningful(chunk) or len(opening) >= _MAX_OPENING_CHUNKS:
                        break
                else:  # nothing came: a broken attempt like a reset, for the next candidate
                    raise UpstreamFailure(Outcome.UPSTREAM_ERROR, NO_CONTENT)
            if params.extra_json and hides_reasoning(params):  # reasoning alone: no start
                beat = began + ctx.attempt_timeout(self._streams.heartbeat_s)
                chunks = await hidden_opening(chunks, opening, stack, clock, timeouts, beat)
            return _OpenStream(chunks, opening, clock.monotonic(), lease, began)
        except TimeoutError as exc:
            raise timed_out(ctx, f"no first chunk within {timeouts.first_chunk_s:g}s") from exc
        except UpstreamFailure as failure:
            if failure.outcome is Outcome.STALLED:
                failure.outcome = Outcome.FIRST_CHUNK_TIMEOUT
            raise

    async def _relay(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        opened: _OpenStream,
        batch: bool,
        screen: ChunkFilter | None,
        asked: tuple[bool, bool],
    ) -> AsyncGenerator[StreamEvent | chat_pb2.Usage, None]:
        """The committed part of a stream, from the route event on: errors now end it with an
        error event, and a caller who goes away is recorded as CANCELLED. `batch`: chunks ready
        together go out as one `chunks` event. `screen`: the stops past the upstream's cap and
        the answer's guardrails, which see every chunk first; once they ended the last choice
        still running, the upstream is read no further (its call is closed with the stack).
        `asked`: whether the caller asked for the usage chunk (taken for the summary either way;
        the router asks the upstream itself, unless the opening learned it refuses), and whether
        it asked not to see the reasoning (taken out before the guardrails see a chunk)."""
        guard, choices = self._guard(deployment), Choices(opened.opening)  # begun, finished
        started = self._clock.monotonic()
        usage_asked, hidden = asked
        billed = ctx.bills(deployment)  # None: no hosted tool call is charged, none counted
        plain = not hidden and screen is None and billed is None  # chunks go out as they came
        # Not plain, a batch may send nothing: beats count from the caller's last message.
        quiet = None if plain else QuietBeats(self._clock, self._streams.heartbeat_s)
        adapter, model = deployment.adapter, deployment.upstream_model
        shown = (usage_asked, not usage_asked and adapter.asks_stream_usage_of(model))
        opening = billed_in(billed, opened.opening)  # read before the commit: ready together
        try:
            yield StreamEvent(route=ctx.route(deployment))
            for event in chunk_events(_seen(opening, hidden, screen), batch, shown):
                yield event
                del event  # neither an event nor its chunks held while the upstream is quiet
            opened.opening = opening = []
            if screen is not None and screen.cut:
                return  # a stop sequence ended it already
            async with aclosing(guard.follow(opened.chunks, choices=choices)) as items:
                async for item in items:
                    if isinstance(item, Idle):  # not plain: since the caller's last message
                        yield StreamEvent(heartbeat=QuietBeats.of_silence(quiet, item.idle_s))
                        continue
                    seen = item if plain else _seen(billed_in(billed, item), hidden, screen)
                    beat = None if quiet is None else quiet.after(seen)
                    if beat is not None:  # the caller was sent nothing for an interval
                        yield StreamEvent(heartbeat=beat)
                    for event in chunk_events(seen, batch, shown):
                        yield event
                        del event
                    del item, seen
                    if screen is not None and screen.cut:
                        return  # every choice ended, the last by a block: read no further
        except (asyncio.CancelledError, GeneratorExit):
            # The caller went away (disconnect, cancellation, deadline): no one is penalised.
            ctx.record(deployment, opened.lease.key.fingerprint, Outcome.CANCELLED, started)
            raise
        except UpstreamFailure as failure:
            error = await self._failed_midstream(ctx, deployment, opened.lease, failure, started)
            yield StreamEvent(error=error)
        finally:
            if ctx.answers is not None:  # however it ended: the finds counted and audited
                ctx.answers.report()


def _seen(
    chunks: list[chat_pb2.ChatCompletionChunk], hidden: bool, screen: ChunkFilter | None
) -> list[chat_pb2.ChatCompletionChunk]:
    """What the caller may see of `chunks`: without their reasoning when it is `hidden`, then
    as the answer's guardrails, which see every chunk first, let it through."""
    if hidden:
        chunks = without_chunk_reasoning(chunks)
    return chunks if screen is None else screen.chunks(chunks)


def _cannot_express(params: chat_pb2.ChatParams) -> Inexpressible:
    stops = has_stops(params)  # without any, nothing for the router to enforce

    def cannot(deployment: Deployment) -> UpstreamFailure | None:
        failure = deployment.cannot_express(params)
        return failure if failure is not None or not stops else cannot_enforce(deployment, params)

    return cannot
