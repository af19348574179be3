"""RouterService.CreateRealtimeCall and HangupRealtimeCall: OpenAI's Realtime API over WebRTC
(`POST /v1/realtime/calls`, `.../{call_id}/hangup`). The gate admitted the offer as it admits a
Realtime session's `open` (the `chat` scope, the model allowed, rpm; an ephemeral client secret
bound to its model) and screened its session config, and the secret's, as a `session.update`'s
before counting it. Here the config is settled (an ephemeral secret's over the caller's, field
by field: the secret binds it), and the offer is posted through the attempt loop; the router
then keeps which deployment and key made the call (the state store,
`streams.realtime_call_ttl_s`), so any replica hangs it up through them, for the client that
made it only.

The call's media and events flow between the caller and the upstream: the router reads them
only through the sideband it attaches (`_call_watch.py`: the usage, the stream slot), so the
answer-side guardrails cannot screen it (a client whose guardrails screen answers is refused,
as for a Realtime session)."""

from __future__ import annotations

from typing import Any

import grpc
import orjson

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service._ids import looked_up_id
from router_service._tool_choice import check_forced_tool
from router_service.auth import (
    Admission,
    current_admission,
    current_caller,
    current_stream_admission,
)
from router_service.auth._realtime_calls import realtime_call_model, realtime_call_session
from router_service.cancellation import uncut
from router_service.errors import (
    AllCandidatesFailedError,
    PermissionDeniedError,
    RealtimeCallNotFoundError,
    UpstreamFailure,
)
from router_service.server._call_watch import (
    HUNG_UP,
    CallWatch,
    call_name,
    call_record,
)
from router_service.server._calls import client_name
from router_service.server._errors import answered
from router_service.server._hooks import ServicerHooks
from router_service.sessions import checked_session_id

__all__ = ["RealtimeCallsServicer"]

_HANGUP_TIMEOUT_S = 30.0  # a deadline-less hangup's


class RealtimeCallsServicer(ServicerHooks):
    """`RouterServicer.CreateRealtimeCall` and `HangupRealtimeCall` (`_features.py`)."""

    async def CreateRealtimeCall(
        self, request: pb.CreateRealtimeCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateRealtimeCallResponse:
        return await answered(context, self._create_call(request, context))

    async def HangupRealtimeCall(
        self, request: pb.HangupRealtimeCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.HangupRealtimeCallResponse:
        return await answered(context, self._hangup(request, context))

    async def _create_call(
        self, request: pb.CreateRealtimeCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateRealtimeCallResponse:
        admission = current_stream_admission() or current_admission()  # the watch's to end
        try:
            return await self._place_call(request, context, admission)
        except BaseException:
            if admission is not None:
                await uncut(admission.close())
            raise

    async def _place_call(
        self,
        request: pb.CreateRealtimeCallRequest,
        context: grpc.aio.ServicerContext,
        admission: Admission | None,
    ) -> pb.CreateRealtimeCallResponse:
        runtime = self.runtime
        session_id = checked_session_id(request.routing.session_id)
        ctx = self._context(realtime_call_model(request), session_id, context)
        if self._answer_guard(ctx.client, ctx.requested_model, "CreateRealtimeCall", context):
            raise PermissionDeniedError(
                "Realtime calls are not available to a client whose guardrails screen answers: "
                "a call's media and events do not pass through the router.",
                code="realtime_not_screened",
            )
        session = _session_of(request)  # the gate screened it (and the secret's)
        placed, deployment, stack = await runtime.executor.create_realtime_call(
            ctx, request.sdp, session
        )
        # Its key lease: a call holds no slot once answered (a failed release is logged).
        await runtime.afterwork.close(stack)
        record = {"client": ctx.client, "deployment": deployment.name}
        record["key"] = placed.key_fingerprint
        ttl_s = runtime.config.streams.realtime_call_ttl_s
        name = call_name(placed.answer.call_id)
        await runtime.store.set_value(name, orjson.dumps(record).decode(), ttl_s)
        key = deployment.pool.find(placed.key_fingerprint)
        secret = "" if key is None else key.secret
        # The watch outlives this call: the offer's deadline is no caller's of the watch's (a
        # stop that ends it later is not DEADLINE_EXCEEDED: `RequestContext.cancelled_at_deadline`).
        ctx.deadline = None
        watch = CallWatch(runtime, ctx, deployment, secret, placed.answer.call_id, admission)
        watch.lease = placed.lease  # its usage, read later, to the key's tpm
        await self.call_watches.start(watch)
        return pb.CreateRealtimeCallResponse(
            call_id=placed.answer.call_id, sdp=placed.answer.sdp, route=ctx.route(deployment)
        )

    async def _hangup(
        self, request: pb.HangupRealtimeCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.HangupRealtimeCallResponse:
        runtime = self.runtime
        call_id = looked_up_id(request.call_id, "call_id", "call", _no_such_call)
        name = call_name(call_id)
        kept = (await runtime.store.get_values([name]))[0]
        record = call_record(kept)
        if kept is None or record is None or record.get("client") != client_name():
            raise RealtimeCallNotFoundError()
        remaining = context.time_remaining()
        timeout_s = _HANGUP_TIMEOUT_S if remaining is None else remaining
        deployment = str(record.get("deployment"))
        # Marked before the upstream ends the call: its sideband, if not attached yet, is then
        # refused as the call's end, not as a failure (`_call_watch.py`).
        ttl_s = runtime.config.streams.realtime_call_ttl_s
        await runtime.store.set_value(name, orjson.dumps(record | {HUNG_UP: True}).decode(), ttl_s)
        try:
            found = await runtime.executor.hangup_realtime_call(
                deployment, str(record.get("key")), call_id, timeout_s
            )
        except UpstreamFailure as failure:  # the upstream's own answer (404 included)
            await runtime.store.set_value(name, kept, ttl_s)  # the call may go on: unmarked
            raise AllCandidatesFailedError(failure, deployment) from failure
        if not found:
            raise RealtimeCallNotFoundError()
        return pb.HangupRealtimeCallResponse()


def _no_such_call(shown: str) -> RealtimeCallNotFoundError:
    """A call id no call could have (`looked_up_id`): as an unknown call's."""
    return RealtimeCallNotFoundError()


def _session_of(request: pb.CreateRealtimeCallRequest) -> dict[str, Any]:
    """The caller's session config, with an ephemeral client secret's over it (without its
    `model`: the router names the deployment's)."""
    session = realtime_call_session(request)  # the gate checked it
    caller = current_caller()
    grant = None if caller is None else caller.realtime_grant
    if grant is not None:
        session = {**session, **orjson.loads(grant.session_json)}
    session.pop("model", None)
    check_forced_tool(session, where="session.")  # the secret's tools may replace the caller's
    return session
