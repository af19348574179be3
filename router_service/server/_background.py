"""The background responses this replica runs (`StartBackgroundResponse`, `CancelResponse`).

A job is owned by the router process, not by the call that started it: its task outlives that
call (the caller goes away; it polls later, on any replica), and the server stops it on its way
down (`shutdown`: the jobs get the same grace as open calls, then each is stopped and written
`failed`, so no poller waits for it forever). What every replica reads is in the state store
(`router_service/responses/_background.py`): this module writes a job's transitions there
(`queued` → `in_progress` → `completed` / `incomplete` / `failed` / `cancelled`).

One watcher task per replica, while it runs jobs (`_jobs.py`, batches' too): every second
(`CHECK_S`) it reads the end marks of all its jobs at once and stops those cancelled on another
replica (a cancel here stops its job at once), and every third of
`responses.background_heartbeat_s` it renews their heartbeats. A client runs at most
`responses.max_background_per_client` jobs across the replicas (`StateStore.enter`, a mark per
job that expires after the time limit should the replica crash); a job runs at most
`responses.background_timeout_s`.
A streamed one (`stream`) records its events (`_background_stream`), the end's once written.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from clients import (
    FINAL_STATUSES,
    ResponseEventStream,
    background_cancelled,
    background_events,
    background_failed,
    background_finished,
    stored_document,
)
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service._ids import MAX_ID_BYTES
from router_service.auth import Admission, current_admission
from router_service.cancellation import uncut
from router_service.engine import RequestContext, truncates
from router_service.errors import (
    BackgroundLimitError,
    DeadlineExceededError,
    InvalidRequestError,
    ReplicaStoppingError,
    ResponseNotCancellableError,
)
from router_service.guardrails import AnswerGuard, Guardrails, stored_response_texts
from router_service.responses import (
    CANCELLED,
    DELETED,
    DONE,
    STOPPED_MESSAGE,
    BackgroundRecords,
    JobId,
    StreamWriter,
    checked_object,
    settle,
)
from router_service.runtime import Runtime
from router_service.server._background_stream import (
    conversed,
    settle_usage,
    still_there,
    streamed_answer,
    told_failure,
)
from router_service.server._job_places import JobPlace, PlaceLines
from router_service.server._jobs import CHECK_S, OwnedJobs
from router_service.server._used import give_back_if_refused, give_back_start
from router_service.sessions import session_id_for, session_key, stored_name
from router_service.telemetry import chat_span, current

__all__ = ["CHECK_S", "BackgroundJobs"]

log = logging.getLogger("switchboard.router")

_RETRY_AFTER_S = 5.0  # a client at its cap: jobs end when they end; try again in a while


@dataclass(eq=False)
class _Job:
    client: str
    queued: dict[str, Any]  # the Response as answered at the start
    conversation: list[chat_pb2.ChatMessage]  # kept for a continuation, before the answer
    input_items: list[str]
    records: BackgroundRecords
    place: JobPlace  # among its client's running jobs (`max_background_per_client`)
    guardrails: Guardrails
    answers: AnswerGuard | None  # screens the answer (response-side guardrails)
    # The start call's admission when its tokens are counted: settled by the job's usage.
    admission: Admission | None = None
    task: asyncio.Task[None] | None = None
    stop: str = ""  # why its task was cancelled: "cancelled", "deleted", "stopped"
    # Its task ran: a task cancelled before that never runs its cleanup (`_stop`, `_run`).
    started: bool = False
    # Its chat call began: a job stopped before that used nothing (its start is given back).
    called: bool = False
    # A streamed one (`stream`): its events, and where they are recorded.
    events: ResponseEventStream | None = None
    writer: StreamWriter | None = None
    # The conversation it continues, and the input items it adds to it once answered.
    conversation_id: str = ""
    conversation_items: list[str] = field(default_factory=list)
    # The session its conversation is named by, kept with it (`StoredResponse.session_id`).
    session: str = ""
    # The status it ended with, once written (metrics); "failed" unless it is written otherwise
    # (a store that failed the write).
    ended: str = "failed"
    key: JobId = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.client, str(self.queued["id"]))

    def document(self, response: dict[str, Any]) -> pb.StoredResponse:
        """The stored response holding `response` (answered ones: with their conversation)."""
        status = str(response["status"])
        if status in ("completed", "incomplete"):
            document = stored_document(self.conversation, response, self.input_items)
            if self.guardrails:  # kept as StoreResponse keeps a foreground one: redacted
                texts = stored_response_texts(document)
                self.guardrails.screen(texts, self.key[0], "", keeping=True)
        else:
            document = pb.StoredResponse(id=self.key[1], input_items_json=self.input_items)
        document.session_id = self.session
        settle(document, response)
        return document


class BackgroundJobs(OwnedJobs[_Job]):
    def __init__(self) -> None:
        super().__init__()
        # `responses.max_background_per_client` in force, and the jobs waiting for a place.
        self._places = PlaceLines()

    def reconfigured(self, cap: int) -> None:
        self._places.reconfigured(cap)

    async def start(
        self,
        runtime: Runtime,
        client: str,
        request: pb.StartBackgroundResponseRequest,
        answers: AnswerGuard | None = None,
    ) -> str:
        """Keep the queued Response and start its job (`answers`: what screens its answer);
        the Response as answered."""
        if self._closed:
            raise ReplicaStoppingError("The router is stopping: start the response again.")
        queued = _queued(request)
        records, config = runtime.background, runtime.config.responses
        ttl_s = config.background_timeout_s + config.background_heartbeat_s
        self._places.cap = config.max_background_per_client  # a start's is the serving one
        place = JobPlace(runtime.store, runtime.clock, client, queued["id"], ttl_s, self._places)
        if not await place.enter():
            raise BackgroundLimitError(place.refusal(), retry_after_s=_RETRY_AFTER_S)
        params = request.chat.params
        start = request.conversation_start
        conversation = list(params.messages[start:])
        items = list(request.input_items_json)
        job = _Job(client, queued, conversation, items, records, place, runtime.guardrails, answers)
        job.admission = current_admission(rpm=True)  # rpm: a refusal gives it back
        job.conversation_id = request.conversation_id
        job.conversation_items = list(request.conversation_items_json)
        job.session = stored_name(request.chat.routing, params)
        try:
            await records.begin(client, job.document(queued))
            if request.stream:  # recorded from its first event: a reader misses none
                job.events = background_events(queued, params=params)
                job.writer = await records.streams.open(client, queued["id"])
                await job.writer.add(job.events.queued())
        except BaseException:
            await place.leave()
            raise
        job.task = asyncio.create_task(self._run(job, runtime, params, request.chat.routing))
        self._jobs[job.key] = job
        heartbeat_s = runtime.config.responses.background_heartbeat_s
        self._watch(records, runtime.clock, heartbeat_s, _beat)
        return orjson.dumps(queued).decode()

    async def cancel(self, runtime: Runtime, client: str, response_id: str) -> str:
        """Cancel `client`'s background response, wherever it runs: the Response cancelled."""
        found = await runtime.responses.load_one(client, response_id)
        await runtime.background.resolve(client, [found])
        status = found.background_status
        if status == "cancelled":
            return found.response_json  # cancelled already: as OpenAI, answered again
        if not status:
            raise ResponseNotCancellableError(
                "Only responses created with 'background: true' can be cancelled."
            )
        won = status not in FINAL_STATUSES
        if won:
            won = await runtime.background.end(client, response_id, CANCELLED) == CANCELLED
        if not won:  # finished as it was read, or just now (its end mark came first)
            ended = status if status in FINAL_STATUSES else "finished"
            raise ResponseNotCancellableError(f"Cannot cancel a {ended} response.")
        job = self._jobs.get((client, response_id))
        if job is not None and job.task is not None:
            self._stop(job, "cancelled")
            await asyncio.wait([job.task])  # it writes itself cancelled
        cancelled = background_cancelled(orjson.loads(found.response_json))
        settle(found, cancelled)
        await runtime.background.write(client, found)
        return found.response_json

    async def deleted(self, runtime: Runtime, client: str, response_id: str) -> None:
        """`client`'s response was deleted: should it be running (here or on another replica),
        it stops, and writes nothing more (it stays deleted). The mark is written even over a
        `done` one: a runner past its end mark writes its answer still, then reads the mark
        again (`_finish`); what it wrote before that read is deleted here once more."""
        await runtime.background.deleted(client, response_id)
        job = self._jobs.get((client, response_id))
        if job is not None and job.task is not None:
            self._stop(job, "deleted")
            await asyncio.wait([job.task])
        await runtime.background.forget(client, response_id)

    async def _run(
        self,
        job: _Job,
        runtime: Runtime,
        params: chat_pb2.ChatParams,
        routing: Any,
    ) -> None:
        metrics = current().metrics
        metrics.background_running.add(1, {})
        try:
            try:
                job.started = True
                if job.stop:  # stopped before its task ran
                    raise asyncio.CancelledError
                final = await self._answer(job, runtime, params, routing)
            except asyncio.CancelledError:
                await self._stopped(job)
                raise
            await uncut(self._finish(job, final))
        finally:
            metrics.background_running.add(-1, {})
            metrics.background_ended.add(1, {"status": job.ended})
            self._jobs.pop(job.key, None)
            await job.place.leave()

    async def _stopped(self, job: _Job) -> None:
        """Write the end of a job stopped (cancelled, deleted, its replica stopping) while its
        cancellation is on its way: a store failure is logged, never raised in its place."""
        try:
            if not job.called and job.admission is not None:  # no upstream was asked
                await give_back_start(job.admission, rpm=True)  # a failure logged
            if job.stop == "deleted":
                job.ended = "deleted"
                await uncut(job.records.forget(*job.key))
            else:
                await uncut(self._finish(job, self._interrupted(job)))
        except Exception:
            log.warning("background response %s: its stop not written", job.key[1], exc_info=True)

    async def _answer(
        self, job: _Job, runtime: Runtime, params: chat_pb2.ChatParams, routing: Any
    ) -> dict[str, Any]:
        """Run the chat call; the Response it makes (failed with the call's error)."""
        in_progress = {**job.queued, "status": "in_progress"}
        await job.records.write(job.client, job.document(in_progress))
        limit_s = runtime.config.responses.background_timeout_s
        ctx = _context(runtime, job.client, params, routing, limit_s)
        ctx.answers = job.answers
        ctx.set_aside = job.place.aside  # its place is others' while it waits out a cooldown
        try:
            async with runtime.clock.timeout(limit_s):  # the router's clock: a test's too
                final = await self._call(job, runtime, params, ctx, in_progress)
        except (TimeoutError, DeadlineExceededError):
            message = (
                f"The background response did not finish within its time limit of {limit_s:g} s "
                "(responses.background_timeout_s)."
            )
            return background_failed(in_progress, "server_error", message)
        except Exception as exc:  # the call's failure is the Response's, as OpenAI tells it
            # One refused for the request itself reached no upstream: its start's estimate and
            # rpm place go back, as a foreground call's (the job settles answers only).
            await give_back_if_refused(job.admission, exc)
            details = told_failure(exc, job.events)
            return background_failed(in_progress, _error_code(details.code), details.message)
        conversation, items = job.conversation_id, job.conversation_items
        return await conversed(runtime, job.client, conversation, items, final)

    async def _call(
        self,
        job: _Job,
        runtime: Runtime,
        params: chat_pb2.ChatParams,
        ctx: RequestContext,
        in_progress: dict[str, Any],
    ) -> dict[str, Any]:
        """The chat call, streamed (its events recorded) when the response is."""
        gone = await still_there(runtime, job.client, job.conversation_id)
        if gone is not None:  # deleted since the start's check: no call spent on it
            if job.admission is not None:
                await give_back_start(job.admission, rpm=True)  # a failure logged
            return background_failed(in_progress, "server_error", gone.message)
        if job.events is not None and job.writer is not None:
            await job.writer.add(job.events.in_progress())  # before the call: it used nothing
            job.called = True
            with chat_span(params, ctx, stream=True) as span:
                return await streamed_answer(
                    runtime, params, ctx, job.events, job.writer, job.admission, span
                )
        job.called = True
        with chat_span(params, ctx, stream=False) as span:
            answer = await runtime.executor.chat(params, ctx)
            span.respond(answer)
        if job.admission is not None:
            usage = answer.completion.usage if answer.completion.HasField("usage") else None
            await uncut(settle_usage(job.admission, answer.route, usage))
        now = int(runtime.clock.now())
        return background_finished(in_progress, answer.completion, now, params)

    def _interrupted(self, job: _Job) -> dict[str, Any]:
        if job.stop == "cancelled":
            return background_cancelled(job.queued)
        return background_failed(job.queued, "server_error", STOPPED_MESSAGE)

    async def _finish(self, job: _Job, final: dict[str, Any]) -> None:
        """Write the job's end: its own, unless a cancel came first (then cancelled). Sets the
        status it ended with (`job.ended`; "deleted": deleted meanwhile, nothing written) on the
        job, not as a result: the cancel that came first cancels the job's task too, and `uncut`
        then raises that cancellation instead of returning."""
        client, response_id = job.key
        mark = CANCELLED if final["status"] == "cancelled" else DONE
        mark = await job.records.end(client, response_id, mark)
        if mark == DELETED:
            job.ended = "deleted"
            return
        if mark == CANCELLED:
            final = background_cancelled(job.queued)
        if not await job.records.write(client, job.document(final)):
            message = "The answer is too large to be kept (responses.max_stored_bytes)."
            final = background_failed(job.queued, "server_error", message)
            await job.records.write(client, job.document(final))
        if job.events is not None and job.writer is not None:  # the end, as it was written
            await job.writer.add(job.events.end(final))
            await job.records.kept_events(client, job.writer)
        if (await job.records.marks([job.key]))[0] == DELETED:  # deleted while written
            await job.records.forget(client, response_id)
            job.ended = "deleted"
            return
        job.ended = str(final["status"])


def _queued(request: pb.StartBackgroundResponseRequest) -> dict[str, Any]:
    """The queued Response the request carries, checked (one nested too deep to be written in
    its stream's events is refused by `checked_object`)."""
    queued = checked_object(request.response_json, "response_json")
    response_id = queued.get("id")
    if not isinstance(response_id, str) or not 0 < len(response_id.encode()) <= MAX_ID_BYTES:
        raise InvalidRequestError(
            "`response_json` must be a Response JSON object with its `id` (a response id of 1 "
            f"to {MAX_ID_BYTES} bytes).",
            param="response_json",
        )
    return {**queued, "status": "queued", "background": True, "store": True}


def _context(
    runtime: Runtime, client: str, params: chat_pb2.ChatParams, routing: Any, limit_s: float
) -> RequestContext:
    session = session_key(client, session_id_for(routing.session_id, params))
    deadline = runtime.clock.monotonic() + limit_s
    ctx = RequestContext(params.model, runtime.clock, deadline=deadline, session_id=session)
    ctx.client, ctx.truncates, ctx.unattended = client, truncates(routing), True
    return ctx


def _error_code(status: Any) -> str:
    """OpenAI's Response error code for a failed call's status."""
    name = getattr(status, "name", "")
    if name == "RESOURCE_EXHAUSTED":
        return "rate_limit_exceeded"
    if name == "INVALID_ARGUMENT":
        return "invalid_prompt"
    return "server_error"


async def _beat(jobs: list[_Job]) -> None:
    """Renew the heartbeats of `jobs` (all of one runtime's records)."""
    if jobs:
        await jobs[0].records.beat([job.key for job in jobs])
