"""RouterService over grpc.aio. Handlers translate the wire to the engine and errors to statuses;
the decisions are the engine's. Streaming handlers are async generators (OpenTelemetry's aio
interceptor needs that)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing
from typing import Any

import grpc

from clients import embedding_params_to_openai, to_grpc_status
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.auth import current_caller, current_stream_admission
from router_service.cache import CacheLookup, StreamRecorder, replay, shared_stream
from router_service.engine import RequestContext, truncates
from router_service.engine._tokens import estimate_media_tokens
from router_service.errors import InvalidRequestError
from router_service.guardrails import SCREENED_MEDIA, AnswerGuard
from router_service.providers._embed_mapping import cached_as_asked
from router_service.runtime import Runtime
from router_service.server._answer_audit import answer_audit
from router_service.server._calls import (
    request_context,
    validate_chat,
    validate_embed,
)
from router_service.server._errors import answered, error_details
from router_service.server._features import FeatureMethods
from router_service.server._long_jobs import LongJobs
from router_service.server._media import check_media
from router_service.server._route_methods import RouteMethods
from router_service.sessions import (
    checked_session_id,
    named_session_id,
    session_id_for,
)
from router_service.telemetry import chat_span, embed_span, media_span


class RouterServicer(FeatureMethods, RouteMethods):
    """Chat, embeddings and media here; routes by `RouteMethods` (`_route_methods.py`); the
    other APIs' methods by their feature servicers, built by their first calls (`_features.py`)."""

    def __init__(self, runtime: Runtime, long_jobs: LongJobs | None = None) -> None:
        # Replaced whole by a config reload; a call reads it once, so it runs on one runtime.
        self.runtime = runtime
        # The background responses, batches and realtime sessions this process runs: they
        # outlive reloads (and their calls); a stop ends them.
        self.long_jobs = long_jobs if long_jobs is not None else LongJobs()
        self.features: dict[tuple[str, str], Any] = {}

    def _screening(
        self, ctx: RequestContext, method: str, grpc_ctx: grpc.aio.ServicerContext
    ) -> str:
        """Give a chat call (or a transcription, a translation) the guardrails that screen its
        answer (None: none apply); what the response cache keys its answer by for them."""
        ctx.answers = self._answer_guard(ctx.client, ctx.requested_model, method, grpc_ctx)
        signature = "" if ctx.answers is None else ctx.answers.signature
        # `truncation: auto` answers what a whole input would not: kept apart.
        return f"{signature}|truncation" if ctx.truncates else signature

    def _answer_guard(
        self, client: str, model: str, method: str, grpc_ctx: grpc.aio.ServicerContext
    ) -> AnswerGuard | None:
        """What screens the answer of `client` calling `model` (None: nothing does)."""
        guardrails = self.runtime.guardrails
        if not guardrails.screens_answers:  # the common case: one test
            return None
        auditing = self.runtime.config.auth.audit == "all"
        return guardrails.answers(
            client,
            model,
            lambda: answer_audit(f"/switchboard.v1.RouterService/{method}", grpc_ctx, auditing),
        )

    async def Chat(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext
    ) -> pb.ChatResponse:
        try:
            written = validate_chat(request.params)
            session = session_id_for(request.routing.session_id, request.params)
            ctx = request_context(self.runtime.clock, request.params.model, session, context)
            ctx.written, ctx.truncates = (request.params, written), truncates(request.routing)
            del written  # the first attempt's, not this frame's for as long as the call runs
            screened_by = self._screening(ctx, "Chat", context)
            cache = self.runtime.cache.lookup(
                "chat", ctx, request.params, _cache_mode(request), screened_by=screened_by
            )
            with chat_span(request.params, ctx, stream=False) as span:
                if cache is None:
                    response = await self.runtime.executor.chat(request.params, ctx)
                else:
                    try:
                        response = await cache.answer(
                            lambda: self.runtime.executor.chat(request.params, ctx)
                        )
                    finally:
                        span.cache(cache.result)
                span.respond(response)
            return response
        except Exception as exc:
            await context.abort_with_status(to_grpc_status(error_details(exc)))
            raise  # unreachable: abort raises

    async def ChatStream(
        self, request: pb.ChatStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ChatStreamResponse]:
        try:
            written = validate_chat(request.params)
            session = session_id_for(request.routing.session_id, request.params)
            ctx = request_context(self.runtime.clock, request.params.model, session, context)
            ctx.stream_slot = current_stream_admission()  # renewed while the stream runs
            ctx.written, ctx.truncates = (request.params, written), truncates(request.routing)
            del written  # the first attempt's, not this frame's for as long as the call runs
            screened_by = self._screening(ctx, "ChatStream", context)
            cache = self.runtime.cache.lookup(
                "stream", ctx, request.params, _cache_mode(request), screened_by=screened_by
            )
            with chat_span(request.params, ctx, stream=True) as span:
                try:
                    events = await self._chat_events(request, ctx, cache)
                    # The route held for the message after it (`route_on_first_message`).
                    route, holds = None, request.route_on_first_message
                    async with aclosing(events):  # type: ignore[type-var]
                        async for event in events:
                            span.observe(event)
                            if holds:
                                if event.WhichOneof("event") == "route":
                                    route = event
                                    continue
                                holds = False
                                if route is not None:
                                    event, route = _with_route(event, route), None
                            yield event
                            del event  # not held while the stream waits for its next
                    if route is not None:  # nothing came after it
                        yield route
                finally:
                    if cache is not None:  # as it ended: a follower that asked itself missed
                        span.cache(cache.result)
        except Exception as exc:
            await context.abort_with_status(to_grpc_status(error_details(exc)))

    async def _chat_events(
        self, request: pb.ChatStreamRequest, ctx: RequestContext, cache: CacheLookup | None
    ) -> AsyncIterator[pb.ChatStreamResponse]:
        """A kept stream replayed (HIT); else the stream an identical miss under way on this
        replica gets (HIT), else a fresh one (MISS, BYPASS; none of the cache's when off: the
        executor's own, with no layer of ours around it)."""
        if cache is None:
            return self.runtime.executor.chat_stream(
                request.params, ctx, batch=request.batch_chunks
            )
        kept = await cache.find()
        if kept is not None:
            return _aiter(replay(kept, cache, batch=request.batch_chunks))
        return shared_stream(
            cache, lambda: self._fresh_stream(request, ctx, cache), batch=request.batch_chunks
        )

    async def _fresh_stream(
        self, request: pb.ChatStreamRequest, ctx: RequestContext, cache: CacheLookup
    ) -> AsyncGenerator[pb.ChatStreamResponse, None]:
        """The upstream's stream, recorded (and kept once whole) for the cache."""
        stream = self.runtime.executor.chat_stream(request.params, ctx, batch=request.batch_chunks)
        recorder = StreamRecorder(cache)
        async with aclosing(stream):
            async for event in stream:
                recorder.see(event)
                yield event
                del event
        await recorder.finish()

    async def Embed(
        self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> pb.EmbedResponse:
        try:
            validate_embed(request.params)
            embedding_params_to_openai(request.params)  # as validate_chat
            session = named_session_id(request.routing.session_id, request.params.user)
            ctx = request_context(self.runtime.clock, request.params.model, session, context)
            ctx.embedding, ctx.truncates = request.params, truncates(request.routing)
            # `truncation: auto` answers what a whole input would not: kept apart.
            cut = "|truncation" if ctx.truncates else ""
            cache = self.runtime.cache.lookup(
                "embed", ctx, request.params, _cache_mode(request), screened_by=cut
            )
            with embed_span(request.params, ctx) as span:
                if cache is None:
                    response = await self.runtime.executor.embed(request.params, ctx)
                else:
                    try:
                        response = await cache.answer(
                            lambda: self.runtime.executor.embed(request.params, ctx)
                        )
                        # Kept once for both encodings (cache/_keys.py): in the one asked.
                        cached_as_asked(response.result, request.params.encoding_format)
                    finally:
                        span.cache(cache.result)
                span.respond_embeddings(response)
            return response
        except Exception as exc:
            await context.abort_with_status(to_grpc_status(error_details(exc)))
            raise

    async def Media(
        self, request: pb.MediaRequest, context: grpc.aio.ServicerContext
    ) -> pb.MediaResponse:
        try:
            params = request.params
            check_media(params)
            session = checked_session_id(request.routing.session_id)
            ctx = request_context(self.runtime.clock, params.model, session, context)
            if params.operation in SCREENED_MEDIA:  # a transcript: its answer-side rules
                self._screening(ctx, "Media", context)
            tokens = estimate_media_tokens(params)
            with media_span(params, ctx) as span:
                response = await self.runtime.executor.media(params, ctx, tokens=tokens)
                if ctx.answers is not None:  # before the caller sees it (a block refuses it)
                    response.route.guardrails.extend(ctx.answers.transcript(response.result))
                span.respond_media(response)
            return response
        except Exception as exc:
            await context.abort_with_status(to_grpc_status(error_details(exc)))
            raise

    async def MediaStream(
        self, request: pb.MediaStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.MediaStreamResponse]:
        try:
            params = request.params
            check_media(params, streamed=True)
            ctx = request_context(
                self.runtime.clock,
                params.model,
                checked_session_id(request.routing.session_id),
                context,
            )
            ctx.stream_slot = current_stream_admission()  # renewed while the stream runs
            if params.operation in SCREENED_MEDIA:  # a transcript: screened as it streams
                self._screening(ctx, "MediaStream", context)
            tokens = estimate_media_tokens(params)
            with media_span(params, ctx, stream=True) as span:
                events = self.runtime.executor.media_stream(params, ctx, tokens=tokens)
                async with aclosing(events):
                    async for event in events:
                        span.observe_media(event)  # its usage and cost, as Media's; an error
                        yield event
        except Exception as exc:
            await context.abort_with_status(to_grpc_status(error_details(exc)))

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        return await answered(context, self._list_models())

    async def _list_models(self) -> pb.ListModelsResponse:
        planner = self.runtime.planner
        caller = current_caller()

        def visible(name: str) -> bool:
            return caller is None or caller.may_use(name)

        models = [
            pb.ModelInfo(
                id=name,
                kind=pb.MODEL_KIND_POOL if group.pool else pb.MODEL_KIND_GROUP,
                members=group.member_groups or [d.name for d in group.members],
                owned_by="switchboard",
                embeddings=group.embeddings,
            )
            for name, group in planner.groups.items()
            if visible(name)
        ]
        embedders = {d.name for g in planner.groups.values() if g.embeddings for d in g.members}
        models += [
            pb.ModelInfo(
                id=name,
                kind=pb.MODEL_KIND_DEPLOYMENT,
                owned_by=d.provider,
                embeddings=name in embedders,
            )
            for name, d in planner.deployments.items()
            if visible(name)
        ]
        return pb.ListModelsResponse(models=models)


async def _aiter(events: Iterable[pb.ChatStreamResponse]) -> AsyncIterator[pb.ChatStreamResponse]:
    for event in events:
        yield event


def _with_route(
    event: pb.ChatStreamResponse, route: pb.ChatStreamResponse
) -> pb.ChatStreamResponse:
    """`event` carrying the route event held for it (`first_route`), as a message of its own:
    the event may be another caller's too (a cache flight hands its followers the leader's
    chunks), whose route (its standing, its cache status) is not this caller's to write on."""
    carried = pb.ChatStreamResponse(first_route=route.route)
    carried.MergeFrom(event)
    return carried


def _cache_mode(
    request: pb.ChatRequest | pb.ChatStreamRequest | pb.EmbedRequest,
) -> routing_pb2.CacheMode.ValueType:
    """What the caller allows the response cache: its request's mode, unless its client's
    config says never (`auth.clients[].cache: false`). A mode this router does not know is the
    caller's error: read as unset, a caller that meant "keep nothing" had its answer kept."""
    mode = request.routing.cache
    if mode not in routing_pb2.CacheMode.values():
        raise InvalidRequestError(
            f"Invalid enum value {mode} in 'routing.cache'.", param="routing.cache"
        )
    caller = current_caller()
    if caller is not None and not caller.cache:
        return routing_pb2.CACHE_MODE_OFF
    return mode
