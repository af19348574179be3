"""The router's request span: from planning to the last chunk, its attributes and the
request-level metrics (duration, outcome, tokens, time to first chunk, retries, fallbacks).

The request's span is its call's server's: over the wire the call's gRPC SERVER span
(`_grpc.served_call`), in one process the edge's HTTP SERVER span, handed over with the call
(`_grpc.handed_call`). The request's attributes and events go on it, its server ends it and
gives its status (`_served.py`: over HTTP a 4xx leaves it unset). The request makes a span of
its own when it runs outside its call's task (a background response), when the server's span is
another request's already (`_free`) or when the edge's span ended before it
(`_RequestEnd._late_span`)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2, router_service_pb2
from router_service.telemetry import _attributes as attr
from router_service.telemetry._grpc import _Handed, handed_call, served_call
from router_service.telemetry._served import leave_to_server
from router_service.telemetry._spans import (
    CANCELLED,
    OFF_REQUEST,
    OK,
    Activated,
    RequestHandle,
    cancelled_by,
    error_type,
    fail,
    open_requests,
    outcome_name,
)
from router_service.telemetry._state import Telemetry, current

if TYPE_CHECKING:
    from router_service.engine import Deployment, RequestContext

__all__ = ["RequestSpan", "chat_span", "embed_span", "media_span"]


class RequestSpan(RequestHandle, Activated):
    """One router request: `with chat_span(...) as span:`; `observe` each stream event,
    `respond` with a unary answer."""

    def __init__(
        self,
        telemetry: Telemetry,
        operation: str,
        ctx: RequestContext,
        request_attributes: Callable[[], attr.Attributes],
        *,
        stream: bool = False,
    ) -> None:
        self._t = telemetry
        self.operation = operation
        self._ctx = ctx
        self._stream = stream
        self._started = time.perf_counter()
        self._first_at: float | None = None
        self._last_at = 0.0
        self._chunks = 0
        self._usage: chat_pb2.Usage | None = None
        self._cost_usd: float | None = None  # RouteInfo.cost_usd: set only for a priced answer
        self._error: str | None = None
        self._finish: list[str] = []
        self._response: attr.Attributes = {}
        self._cache = ""
        self.attempts = 0
        self._handed: _Handed | None = None
        self._shared: Span | None = None  # the server's span, when it is this request's
        self._opening: attr.Attributes = {}
        if telemetry.tracing:
            self._start_span(request_attributes)

    def _start_span(self, request_attributes: Callable[[], attr.Attributes]) -> None:
        handed = handed_call()
        served = served_call() if handed is None else None
        if handed is not None and _free(handed.caller):
            # In one process the edge's span is this request's span too: what a span of its own
            # would say of the request goes on it (its start, end and export saved; the
            # attempts are the edge span's children).
            self._handed = handed
            self.span = self._shared = handed.caller
        elif served is not None and _free(served):  # over the wire: the call's SERVER span
            self.span = self._shared = served
        else:
            name = f"{self.operation} {attr.shown(self._ctx.requested_model)}"
            self.span = self._t.tracer.start_span(name, kind=SpanKind.INTERNAL)
        # Attributes only for a span that records: a sampled-out request pays nothing here.
        if self.span.is_recording():
            ctx = self._ctx
            self._opening = {
                attr.OPERATION: self.operation,
                attr.REQUEST_MODEL: attr.shown(ctx.requested_model),
                attr.STREAM: self._stream,
                attr.CLIENT: ctx.client or attr.ANONYMOUS_CLIENT,
                **request_attributes(),
            }
            if handed is not None and handed.attributes:  # said before the request started
                self._opening.update(handed.attributes)
            self.span.set_attributes(self._opening)

    def __enter__(self) -> RequestSpan:
        if self.span is not self._shared or self._handed is not None:
            self._activate()  # (the call's SERVER span over the wire is current already)
        open_requests[id(self._ctx)] = self
        if self._stream:
            self._t.metrics.streams_open += 1
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        open_requests.pop(id(self._ctx), None)
        self._deactivate()
        if self._stream:
            self._t.metrics.streams_open -= 1
        _RequestEnd(self, exc).record()

    def observe(self, event: router_service_pb2.ChatStreamResponse) -> None:
        """One stream event on its way to the caller."""
        kind = event.WhichOneof("event")
        if kind == "chunk":
            self._observe_chunks((event.chunk,))
        elif kind == "chunks":
            self._observe_chunks(event.chunks.chunks)
        else:
            self._ending(kind, event)

    def observe_media(self, event: router_service_pb2.MediaStreamResponse) -> None:
        self._ending(event.WhichOneof("event"), event)

    def _ending(
        self,
        kind: str | None,
        event: router_service_pb2.ChatStreamResponse | router_service_pb2.MediaStreamResponse,
    ) -> None:
        """A stream's summary (its usage, cost) or error event (its outcome)."""
        if kind == "summary":
            summary = event.summary
            if summary.HasField("usage"):
                self._usage = summary.usage
            if summary.route.HasField("cost_usd"):
                self._cost_usd = summary.route.cost_usd
        elif kind == "error":
            self._error = outcome_name(event.error.outcome)

    def _observe_chunks(self, chunks: Iterable[chat_pb2.ChatCompletionChunk]) -> None:
        now = self._last_at = time.perf_counter()
        if self._first_at is None:
            self._first_at = now
        recording = self.span.is_recording()
        for chunk in chunks:
            self._chunks += 1
            if chunk.HasField("usage"):
                self._usage = chunk.usage
            if recording:
                self._chunk_attributes(chunk)

    def _chunk_attributes(self, chunk: chat_pb2.ChatCompletionChunk) -> None:
        if not self._response:
            self._response = {attr.RESPONSE_ID: chunk.id, attr.RESPONSE_MODEL: chunk.model}
        for choice in chunk.choices:
            reason = attr.finish_reason(choice.finish_reason, choice.finish_reason_raw)
            if reason:
                self._finish.append(reason)

    def respond(self, response: router_service_pb2.ChatResponse) -> None:
        completion = response.completion
        if completion.HasField("usage"):
            self._usage = completion.usage
        if response.route.HasField("cost_usd"):
            self._cost_usd = response.route.cost_usd
        if self.span.is_recording():
            self._response = attr.completion(completion)

    def respond_embeddings(self, response: router_service_pb2.EmbedResponse) -> None:
        result = response.result
        if result.HasField("usage"):
            self._usage = chat_pb2.Usage(prompt_tokens=result.usage.prompt_tokens)
        if response.route.HasField("cost_usd"):
            self._cost_usd = response.route.cost_usd
        if self.span.is_recording():
            self._response = {attr.RESPONSE_MODEL: result.model}

    def respond_media(self, response: router_service_pb2.MediaResponse) -> None:
        if response.result.HasField("usage"):
            self._usage = response.result.usage
        if response.route.HasField("cost_usd"):
            self._cost_usd = response.route.cost_usd

    def failed(self, outcome: str) -> None:
        self._error = outcome

    def cache(self, result: str) -> None:
        if not result:
            return
        self._cache = result
        labels = {
            attr.OPERATION: self.operation,
            attr.MODEL_GROUP: self._ctx.requested_model,  # one the cache is on for: known
            attr.STREAM: self._stream,
            attr.CACHE: result,
        }
        self._t.metrics.cache_lookups.add(1, labels)
        if self.span.is_recording():
            self.span.set_attribute(attr.CACHE, result)

    def _labels(self) -> attr.Attributes:
        return {attr.OPERATION: self.operation, attr.MODEL_GROUP: self.model_group}

    @property
    def model_group(self) -> str:
        # A cached answer's model was checked on admission; no plan was made for it.
        known = self._ctx.plan is not None or self._cache == "hit"
        return self._ctx.requested_model if known else attr.UNRESOLVED


def _free(caller: Span) -> bool:
    """Whether the edge's span can be this request's: it records and is no other request's
    yet (an HTTP request that makes several router calls one after another: the first has it,
    the others spans of their own; calls made together hand over no span: `calls_apart`)."""
    return caller.is_recording() and attr.OPERATION not in getattr(caller, "attributes", {})


def _server_span(span: Span) -> bool:
    """Whether the span the request shares is a server's (the router's gRPC SERVER span, the
    edge's HTTP SERVER span; not a caller's own span handed over in one process): its server
    gives its status by its protocol (`_served.py`)."""
    return getattr(span, "kind", None) is SpanKind.SERVER


class _RequestEnd:
    """What a request leaves behind when it ends: span attributes and metrics."""

    def __init__(self, request: RequestSpan, exc: BaseException | None) -> None:
        self.r = request
        self.exc = exc
        ctx = request._ctx
        self.winner = next((a for a in reversed(ctx.attempts) if a.outcome == OK), None)
        if isinstance(exc, CANCELLED):
            # A stream that told its caller its error (`observe`) ended there: the call's
            # cancellation after it (the edge closes its response at the error event, while
            # the router may still be cleaning up: a lease given back to Redis) is not what
            # happened to the request, nor a caller that left. gRPC cancels a call whose
            # deadline passed as one its caller left: that caller saw DEADLINE_EXCEEDED.
            passed = ctx.cancelled_at_deadline()
            self.outcome = request._error or ("DEADLINE_EXCEEDED" if passed else "CANCELLED")
        elif exc is not None:
            self.outcome = error_type(exc)
        else:
            self.outcome = request._error or "OK"

    def record(self) -> None:
        r = self.r
        metrics = r._t.metrics
        labels = r._labels()
        elapsed = time.perf_counter() - r._started
        outcome = {**labels, attr.STREAM: r._stream, attr.OUTCOME: self.outcome}
        client = r._ctx.client or attr.ANONYMOUS_CLIENT
        metrics.requests.add(1, {**outcome, attr.CLIENT: client})
        metrics.request_duration.record(elapsed, outcome)
        deployment = self._deployment()
        served = {**labels, **self._served(deployment)}
        if r._first_at is not None:
            metrics.time_to_first_chunk.record(r._first_at - r._started, served)
            if r._chunks > 1:  # one value per stream: the mean gap after the first chunk
                per_chunk = (r._last_at - r._first_at) / (r._chunks - 1)
                metrics.time_per_output_chunk.record(per_chunk, served)
        if r._usage is not None and r._cache != "hit":  # a cached answer used no tokens
            self._count_tokens(r._usage, served, client)
        if r._cost_usd is not None:  # a cache hit's route has none
            by_client = {attr.CLIENT: client, attr.MODEL_GROUP: r.model_group}
            metrics.client_spend.add(r._cost_usd, by_client)
        self._count_retries(labels)
        if r._handed is not None and not r.span.is_recording():
            self._late_span()  # the edge's span ended first (its caller went away)
        if r.span.is_recording():
            self._finish_span(served)
        if r.span is not r._shared:  # a server ends its own
            r.span.end()

    def _late_span(self) -> None:
        """The request's own span after all, from the call's start (the sampler asked now), when
        the edge's span it shared ended before the request did: what the request says at its
        end (its outcome, attempts, usage) is not lost. Its attempts are the edge span's
        children, as they were."""
        r = self.r
        assert r._handed is not None
        parent = trace.set_span_in_context(r._handed)
        name = f"{r.operation} {attr.shown(r._ctx.requested_model)}"
        start = r._handed.started_ns
        r.span = r._t.tracer.start_span(name, parent, SpanKind.INTERNAL, start_time=start)
        if r.span.is_recording():
            r.span.set_attributes(r._opening)

    def _count_tokens(self, usage: chat_pb2.Usage, served: attr.Attributes, client: str) -> None:
        metrics, r = self.r._t.metrics, self.r
        by_client = {attr.CLIENT: client, attr.MODEL_GROUP: r.model_group}
        counts = [("input", usage.prompt_tokens)]
        # A chat's output always; another's when it made some (a Realtime session, an image,
        # speech): an embedding or a moderation has none to say.
        if r.operation == "chat" or usage.completion_tokens:
            counts.append(("output", usage.completion_tokens))
        for kind, tokens in counts:
            metrics.token_usage.record(tokens, {**served, attr.TOKEN_TYPE: kind})
            metrics.client_tokens.add(tokens, {**by_client, attr.TOKEN_TYPE: kind})

    def _deployment(self) -> Deployment | None:
        plan = self.r._ctx.plan
        if self.winner is None or plan is None:
            return None
        return next((d for d in plan.candidates if d.name == self.winner.deployment), None)

    def _served(self, deployment: Deployment | None) -> attr.Attributes:
        """Its labels: the upstream model (GenAI requires it), `server.*` its base URL's host."""
        if deployment is None:
            return {}
        return {
            attr.PROVIDER_NAME: attr.provider_name(deployment.adapter.kind),
            attr.PROVIDER: deployment.provider,
            attr.DEPLOYMENT: deployment.name,
            attr.REQUEST_MODEL: deployment.upstream_model,
            attr.RESPONSE_MODEL: deployment.upstream_model,
            **attr.server_attributes(deployment.adapter.config.base_url),
        }

    def _count_retries(self, labels: attr.Attributes) -> None:
        metrics = self.r._t.metrics
        attempts = self.r._ctx.attempts
        for before, after in itertools.pairwise(attempts):
            if before.deployment != after.deployment:
                metrics.fallbacks.add(1, {**labels, attr.DEPLOYMENT: before.deployment})
            elif before.key_fingerprint != after.key_fingerprint:
                metrics.retries.add(1, {**labels, attr.DEPLOYMENT: before.deployment})

    def _finish_span(self, served: attr.Attributes) -> None:
        r, span = self.r, self.r.span
        attributes: attr.Attributes = {**served, **r._response, attr.OUTCOME: self.outcome}
        # Said already: the operation (at the start), the served deployment's provider (by the
        # served attempt's span; `switchboard.deployment` here names that deployment).
        del attributes[attr.OPERATION]
        attributes.pop(attr.PROVIDER, None)
        attributes.pop(attr.REQUEST_MODEL, None)  # the span's: the model its caller asked for
        attributes[attr.ATTEMPTS] = r.attempts
        if r._finish:
            attributes[attr.FINISH_REASONS] = r._finish
        if r._usage is not None:
            attributes |= attr.usage(r._usage)
        if r._cost_usd is not None:
            attributes[attr.COST_USD] = r._cost_usd
        if r._first_at is not None:
            attributes[attr.TIME_TO_FIRST_CHUNK] = r._first_at - r._started
        span.set_attributes(attributes)
        if self.outcome == "OK":
            return
        if self.exc is not None and not isinstance(self.exc, CANCELLED):
            message = str(getattr(self.exc, "message", "") or type(self.exc).__name__)
        else:
            cancelled = self.outcome in ("CANCELLED", "DEADLINE_EXCEEDED")
            message = cancelled_by(r._ctx) if cancelled else "stream failed"
        if span is r._shared and _server_span(span):
            leave_to_server(span, self.outcome, message)  # its status is the answer's to decide
        else:
            fail(span, self.outcome, message)


def chat_span(params: chat_pb2.ChatParams, ctx: RequestContext, *, stream: bool) -> RequestHandle:
    t = current()
    if not (t.tracing or t.metering):
        return OFF_REQUEST
    return RequestSpan(t, "chat", ctx, lambda: attr.chat_request(params), stream=stream)


def embed_span(params: embeddings_pb2.EmbeddingParams, ctx: RequestContext) -> RequestHandle:
    t = current()
    if not (t.tracing or t.metering):
        return OFF_REQUEST
    return RequestSpan(t, "embeddings", ctx, lambda: attr.embed_request(params))


def media_span(
    params: media_pb2.MediaParams, ctx: RequestContext, *, stream: bool = False
) -> RequestHandle:
    """The operation as OpenAI's path names it, dotted (`images.generations`, `audio.speech`)."""
    t = current()
    if not (t.tracing or t.metering):
        return OFF_REQUEST
    return RequestSpan(t, attr.media_operation(params.operation), ctx, dict, stream=stream)


def realtime_span(ctx: RequestContext) -> RequestHandle:
    """A Realtime API session, from its open to its close (its usage: its `response.done`s')."""
    t = current()
    if not (t.tracing or t.metering):
        return OFF_REQUEST
    return RequestSpan(t, "realtime", ctx, dict, stream=True)
