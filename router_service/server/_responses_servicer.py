"""RouterService's handlers of what the Responses and Conversations APIs keep: stored
responses, background responses (run by `BackgroundJobs`) and conversations. Served for
`RouterServicer` from the first call on (`_features.py`); like every handler they
translate the wire, the decisions are the runtime's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING

import grpc

from clients import to_grpc_status
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import current_stream_admission
from router_service.engine import truncates
from router_service.errors import InvalidRequestError
from router_service.responses import checked_items
from router_service.server._background_stream import beating, resume_events
from router_service.server._calls import client_name, validate_chat
from router_service.server._errors import answered, error_details
from router_service.server._hooks import ServicerHooks
from router_service.sessions import checked_session_id

if TYPE_CHECKING:
    from router_service.engine._stream_holds import SlotHold

__all__ = ["ResponsesServicer"]


class ResponsesServicer(ServicerHooks):
    async def StoreResponse(
        self, request: pb.StoreResponseRequest, context: grpc.aio.ServicerContext
    ) -> pb.StoreResponseResponse:
        async def store() -> pb.StoreResponseResponse:
            _check_foreground(request.response)
            return await self.runtime.responses.save(client_name(), request.response)

        return await answered(context, store())

    async def LoadResponses(
        self, request: pb.LoadResponsesRequest, context: grpc.aio.ServicerContext
    ) -> pb.LoadResponsesResponse:
        runtime, client = self.runtime, client_name()
        found = await answered(context, runtime.responses.load(client, request.ids))
        # A running background response as a reader must see it (cancelled, its replica gone).
        await answered(context, runtime.background.resolve(client, found))
        return pb.LoadResponsesResponse(responses=found)

    async def DeleteResponse(
        self, request: pb.DeleteResponseRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteResponseResponse:
        runtime, client = self.runtime, client_name()
        await answered(context, runtime.responses.delete(client, request.id))
        # Should it be a background response still running, it stops and stays deleted.
        await answered(context, self.jobs.deleted(runtime, client, request.id))
        return pb.DeleteResponseResponse(deleted=True)

    async def StartBackgroundResponse(
        self, request: pb.StartBackgroundResponseRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartBackgroundResponseResponse:
        async def start() -> str:
            params, client = request.chat.params, client_name()
            validate_chat(params)
            if not params.model:
                raise InvalidRequestError("`model` is required.", param="chat.params.model")
            # Checked now, not by the job: its task would die with the Response `in_progress`.
            checked_session_id(request.chat.routing.session_id, param="chat.routing.session_id")
            truncates(request.chat.routing, "chat.routing")
            _check_conversation_start(request.conversation_start, len(params.messages))
            # Added to the conversation once answered: refused then, the call was spent for it.
            _check_conversation_items(request)
            checked_items(request.conversation_items_json, (), "conversation_items_json")
            # An unknown model is the 404 a Chat call gets, now: not a job queued to fail.
            self.runtime.planner.resolve(params.model)
            if request.conversation_id:
                # Found missing only as the answer was added, the call was spent for a `failed`
                # response. The job reads it again before its call (`still_there`); a delete
                # during the call leaves the answer `completed`, in no conversation (`conversed`).
                conversations = self.runtime.conversations
                await conversations.check(client, request.conversation_id, param="conversation_id")
            # Its answer is screened as a Chat call's (the audit names this call, its peer).
            answers = self._answer_guard(client, params.model, "StartBackgroundResponse", context)
            return await self.jobs.start(self.runtime, client, request, answers)

        started = await answered(context, start())
        return pb.StartBackgroundResponseResponse(response_json=started)

    async def CancelResponse(
        self, request: pb.CancelResponseRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelResponseResponse:
        cancelled = await answered(
            context, self.jobs.cancel(self.runtime, client_name(), request.id)
        )
        return pb.CancelResponseResponse(response_json=cancelled)

    async def ResumeResponse(
        self, request: pb.ResumeResponseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ResumeResponseResponse]:
        after = request.starting_after if request.HasField("starting_after") else -1
        events = resume_events(self.runtime, client_name(), request.id, after)
        every_s = self.runtime.config.streams.heartbeat_s
        beats = beating(events, self.runtime.clock, every_s)
        slot = self._keep_slot()
        try:
            async with aclosing(beats):  # a caller gone: its watch of the events goes too
                async for event in beats:
                    if isinstance(event, pb.Heartbeat):
                        yield pb.ResumeResponseResponse(heartbeat=event)
                    else:
                        yield pb.ResumeResponseResponse(event_json=event)
        except Exception as exc:
            await context.abort_with_status(to_grpc_status(error_details(exc)))
        finally:
            if slot is not None:
                await slot.stop()

    def _keep_slot(self) -> SlotHold | None:
        """The caller's stream slot, taken for `server.lease_ttl_s` (no deadline), renewed
        every third of it while the resume runs: a background response may stream longer (a
        long reasoning), and a slot expired under it lets the client open one stream more. By
        the runtime's renewer, as a realtime session's (engine/_stream_holds.py)."""
        admission = current_stream_admission()
        if admission is None:
            return None
        runtime = self.runtime
        return runtime.runner.renewer.keep_slot(admission, runtime.config.server.lease_ttl_s)

    async def CreateConversation(
        self, request: pb.CreateConversationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateConversationResponse:
        return await answered(context, self.runtime.conversations.create(client_name(), request))

    async def LoadConversation(
        self, request: pb.LoadConversationRequest, context: grpc.aio.ServicerContext
    ) -> pb.LoadConversationResponse:
        loading = self.runtime.conversations.load(
            client_name(), request.id, with_item_ids=request.with_item_ids
        )
        return await answered(context, loading)

    async def UpdateConversation(
        self, request: pb.UpdateConversationRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateConversationResponse:
        return await answered(context, self.runtime.conversations.update(client_name(), request))

    async def DeleteConversation(
        self, request: pb.DeleteConversationRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteConversationResponse:
        await answered(context, self.runtime.conversations.delete(client_name(), request.id))
        return pb.DeleteConversationResponse(deleted=True)


def _check_conversation_start(start: int, messages: int) -> None:
    """An index into the chat's messages: out of them, Python's slice kept a stray tail (a
    negative start) or nothing (past the end) as the conversation a continuation carries on."""
    if not 0 <= start <= messages:
        raise InvalidRequestError(
            f"`conversation_start` is {start}; it must be 0 to {messages} (an index into "
            "`chat.params.messages`).",
            param="conversation_start",
        )


def _check_conversation_items(request: pb.StartBackgroundResponseRequest) -> None:
    """Items to add to a conversation need the conversation: without its id the job added
    them nowhere, silently (the edge sends them only with one)."""
    if request.conversation_items_json and not request.conversation_id:
        raise InvalidRequestError(
            "`conversation_items_json` is added to the conversation `conversation_id` names: "
            "set `conversation_id` too, or send no items.",
            param="conversation_items_json",
        )


def _check_foreground(response: pb.StoredResponse) -> None:
    """A caller stores what it answered itself: a background status is its job's to write
    (`StartBackgroundResponse`). Forged, a `queued` one without its Response failed every load
    of it, and an `in_progress` one could be cancelled as if it ran."""
    if response.background_status:
        raise InvalidRequestError(
            "`response.background_status` is written by the router's background job: store a "
            "response answered in the foreground (start a background one with "
            "StartBackgroundResponse).",
            param="response.background_status",
        )
