"""What a background job does beyond a plain chat call (`BackgroundJobs`): a streamed one's
(OpenAI's `background` with `stream`) chat call as a stream, each chunk's Responses events
recorded as it comes (`StreamLog`), and their readers (`ResumeResponse`: the recorded events
after `starting_after`, then the live ones); the answer added to the conversation it continues.

A job records every event a streaming caller sees but the one that ends the stream, which it
records once its end is decided (`BackgroundJobs._finish`: a cancel may come first), after the
response is written: a reader that finds the response finished yet no end event (its replica
stopped, or the end is being appended) ends the stream with the stored Response's own end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from clients import (
    FINAL_STATUSES,
    ErrorDetails,
    ResponseEventStream,
    background_events,
    background_failed,
    openai_error_body,
    responses_field,
    said_in_callers_terms,
)
from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import Admission
from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.engine import RequestContext
from router_service.errors import (
    ConversationNotFoundError,
    InvalidRequestError,
    SwitchboardError,
)
from router_service.responses import StreamWriter
from router_service.runtime import Runtime
from router_service.server._errors import error_details
from router_service.server._used import settle_logged

if TYPE_CHECKING:
    from router_service.telemetry import RequestHandle

T = TypeVar("T")

log = logging.getLogger("switchboard.router")

__all__ = [
    "beating",
    "conversed",
    "resume_events",
    "settle_usage",
    "still_there",
    "streamed_answer",
    "told_failure",
]


async def streamed_answer(
    runtime: Runtime,
    params: chat_pb2.ChatParams,
    ctx: RequestContext,
    events: ResponseEventStream,
    writer: StreamWriter,
    admission: Admission | None,
    span: RequestHandle,
) -> dict[str, Any]:
    """Run the chat call as a stream, recording its events; the Response it answered (the
    event that ends the stream not recorded yet), `failed` by an error event mid-stream. Its
    `response.in_progress` event is the job's to record first (`BackgroundJobs._call`). `span`
    sees every event, as a ChatStream call's does (its usage, cost and outcome: the metrics)."""
    summary: pb.StreamSummary | None = None
    stream = runtime.executor.chat_stream(params, ctx, batch=True)
    async with aclosing(stream):
        async for message in stream:
            span.observe(message)
            kind = message.WhichOneof("event")
            if kind == "chunk":
                await writer.add(events.feed(message.chunk))
            elif kind == "chunks":
                await writer.add([e for chunk in message.chunks.chunks for e in events.feed(chunk)])
            elif kind == "error":
                error = message.error
                events.failing(error.code or error.type or None)  # as a foreground stream's
                code = "rate_limit_exceeded" if error.code == "rate_limit_exceeded" else ""
                response = events.answered(0)
                response.pop("completed_at", None)  # it did not complete
                return background_failed(response, code or "server_error", error.message)
            elif kind == "summary":
                summary = message.summary
    if summary is not None:
        if summary.HasField("usage"):
            events.usage(summary.usage)
        if admission is not None:
            usage = summary.usage if summary.HasField("usage") else None
            await uncut(settle_usage(admission, summary.route, usage))
    await writer.add(events.close())
    return events.answered(int(runtime.clock.now()))


def told_failure(exc: Exception, events: ResponseEventStream | None) -> ErrorDetails:
    """A job's call's failure as the edge tells a foreground call's: a refusal of the chat field
    the router checks said of the Responses field the caller set (`input`, not `messages[1]`),
    as a batch line's is; a streamed job's `error` event gets its code and param."""
    details = said_in_callers_terms(error_details(exc), responses_field)
    if events is not None:
        told = openai_error_body(details)["error"]
        events.failing(told.get("code") or told.get("type"), told.get("param"))
    return details


async def settle_usage(
    admission: Admission, route: routing_pb2.RouteInfo, usage: chat_pb2.Usage | None
) -> None:
    """The client's tpm and budgets corrected by what the job's call used, as a Chat call's are
    when it answers (the start counted its estimate): a cached answer used nothing; an answer
    without usage leaves the estimate. A failure (the state store lost) is logged, not raised:
    the answer was paid for, and the job keeps it (`Used.settle`'s, for a foreground call)."""
    cost = route.cost_usd if route.HasField("cost_usd") else None
    if route.cache == routing_pb2.CACHE_STATUS_HIT:
        await settle_logged(admission, 0, None)
    elif usage is not None:
        await settle_logged(admission, usage.total_tokens, cost)


async def still_there(
    runtime: Runtime, client: str, conversation_id: str
) -> ConversationNotFoundError | None:
    """The error of the conversation a job continues when it is gone (deleted since the
    start's check), read again just before the call: nothing is spent for an answer that has
    nowhere to go. None: no conversation, or it is there."""
    if not conversation_id:
        return None
    try:
        await runtime.conversations.check(client, conversation_id, param="conversation_id")
    except ConversationNotFoundError as exc:
        return exc
    return None


async def conversed(
    runtime: Runtime, client: str, conversation_id: str, items: list[str], final: dict[str, Any]
) -> dict[str, Any]:
    """`final`, once `items` (the request's input items) then its output are added to the
    conversation it continues, as a foreground call's. When they cannot be (the conversation
    was deleted during the call, or is full) the answer is kept all the same: it was paid for,
    and a streamed one's readers saw it already. It stays `completed` with its output, its
    `conversation` null (it is in none), and the failed append is logged."""
    if not conversation_id or final["status"] not in ("completed", "incomplete"):
        return final
    output = [orjson.dumps(item).decode() for item in final.get("output") or []]
    change = pb.UpdateConversationRequest(id=conversation_id, add_items_json=[*items, *output])
    try:
        await runtime.conversations.update(client, change)
    except SwitchboardError as exc:
        log.warning(
            "background response %s: its answer could not be added to conversation %s (%s);"
            " kept, in no conversation",
            final.get("id"),
            conversation_id,
            exc.message,
        )
        return {**final, "conversation": None}
    return final


async def resume_events(
    runtime: Runtime, client: str, response_id: str, after: int
) -> AsyncGenerator[str, None]:
    """`client`'s streamed background response's events after `after` (JSON), the live ones
    as they come, until the one that ends it."""
    records = runtime.background
    found = await runtime.responses.load_one(client, response_id)
    if not found.background_status:
        raise InvalidRequestError(
            "Only responses created with 'background: true' and 'stream: true' can be streamed.",
            param="stream",
            code="response_not_streamable",
        )
    if not await records.streams.kept(client, response_id):
        raise InvalidRequestError(
            "This response was not created with 'stream: true' (or its events have expired): "
            "retrieve it without 'stream'.",
            param="stream",
            code="response_not_streamable",
        )
    ended: list[pb.StoredResponse] = []

    async def gone() -> bool:
        """Whether the response has finished (no end event may follow: its replica stopped)."""
        now = await runtime.responses.load_one(client, response_id)  # deleted: NOT_FOUND
        await records.resolve(client, [now])
        if now.background_status in FINAL_STATUSES:
            ended.append(now)
            return True
        return False

    last = after
    follow = records.streams.follow(client, response_id, after, gone)
    async with aclosing(follow):  # its watch ends with this call, whichever way it ends
        async for event in follow:
            last = event["sequence_number"]
            yield orjson.dumps(event).decode()
    if ended:  # ended without its end event (its replica stopped): the stored Response's own
        response = orjson.loads(ended[0].response_json)
        for event in background_events(response, last + 1).end(response):
            yield orjson.dumps(event).decode()


async def _beat_due(clock: Clock, at: float) -> None:
    """Wait until `clock`'s monotonic time reaches `at`. What is left is reckoned when this
    starts, not when it is made: a clock moved in between (a test's ManualClock advanced as the
    task waits its turn) must not push the beat a whole period later."""
    await clock.wait(at - clock.monotonic())


async def beating(
    events: AsyncGenerator[T, None], clock: Clock, every_s: float
) -> AsyncGenerator[T | pb.Heartbeat, None]:
    """`events`, with a heartbeat after each `every_s` (on `clock`) that brought none: a
    background response may run long in silence, and a reader's idle timeout (the openai SDK's
    600 s) must not end its stream meanwhile. Closing this closes `events`."""
    told = clock.monotonic()
    following: asyncio.Future[T] | None = None
    beat: asyncio.Future[None] | None = None
    try:
        while True:
            following = following or asyncio.ensure_future(anext(events))
            beat = beat or asyncio.ensure_future(_beat_due(clock, told + every_s))
            await asyncio.wait((following, beat), return_when=asyncio.FIRST_COMPLETED)
            if following.done():
                done, following = following, None
                try:
                    event = done.result()
                except StopAsyncIteration:
                    return
                told = clock.monotonic()
                yield event
            else:
                beat = None
                if (idle := clock.monotonic() - told) >= every_s:
                    told = clock.monotonic()
                    yield pb.Heartbeat(idle_ms=int(idle * 1000))
    finally:
        # The pending read first: a generator cannot be closed while a read runs in it.
        pending = [task for task in (following, beat) if task is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await events.aclose()
