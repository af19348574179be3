"""RouterService.CreateRealtimeClientSecret: ephemeral Realtime client secrets, OpenAI's
`POST /v1/realtime/client_secrets`, built on issued client keys (`auth/_issued.py`).

The secret is a key issued for the calling client (its limits, budgets and models apply), with
the lifetime asked, labelled as ephemeral, bounded apart (`auth.max_ephemeral_keys`), carrying
a `RealtimeGrant`: the gate lets it call Realtime only, for the session's model only, and each
session opened with it starts with the session config as its first `session.update`
(`opening_update`), answered before the caller sees anything: its `session.created` carries the
configured session, as OpenAI's does (`engine/_realtime.py`, `_configured`). A session opened
with it names no model, or the secret's. As with OpenAI, the secret opens sessions until it
expires, and a session it opened lives on after that; the browser may change the session later
(`session.update`)."""

from __future__ import annotations

import grpc
import orjson

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import (
    RealtimeGrant,
    client_secret_ask,
    current_caller,
    unknown_key_error,
)
from router_service.errors import PermissionDeniedError
from router_service.runtime import Runtime
from router_service.server._client_keys import audited_key_change
from router_service.server._errors import answered
from router_service.server._hooks import ServicerHooks

__all__ = ["EPHEMERAL_LABEL", "OPENING_EVENT_ID", "RealtimeSecretsServicer", "opening_update"]

EPHEMERAL_LABEL = "ephemeral realtime client secret"
_METHOD = "/switchboard.v1.RouterService/CreateRealtimeClientSecret"
# The `event_id` of a session's opening `session.update`: an upstream `error` answering it names
# it (its `error.event_id`), so the browser can tell the secret's session config was refused.
OPENING_EVENT_ID = "event_switchboard_client_secret_session"


class RealtimeSecretsServicer(ServicerHooks):
    """`RouterServicer.CreateRealtimeClientSecret` (`_features.py`)."""

    async def CreateRealtimeClientSecret(
        self, request: pb.CreateRealtimeClientSecretRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateRealtimeClientSecretResponse:
        return await answered(context, create_client_secret(self.runtime, request, context))


async def create_client_secret(
    runtime: Runtime, request: pb.CreateRealtimeClientSecretRequest, call: grpc.aio.ServicerContext
) -> pb.CreateRealtimeClientSecretResponse:
    caller = current_caller()
    if caller is None or caller.anonymous:  # open mode: there is no client to issue it for
        raise PermissionDeniedError(
            "An ephemeral client secret is issued for a configured client: call with its key.",
            code="client_secret_needs_client",
        )
    ask = client_secret_ask(request)  # the gate checked it
    grant = RealtimeGrant(ask.model, orjson.dumps(ask.session).decode())
    ttl_s: float = ask.ttl_s
    if caller.key_expires_unix is not None:  # it outlives not the key that asked for it
        ttl_s = min(ttl_s, caller.key_expires_unix - runtime.clock.now())
        if ttl_s <= 0:  # expired since the gate let it in
            raise unknown_key_error()
    secret, key = await runtime.issued_keys.issue(
        caller.name,
        EPHEMERAL_LABEL,
        ttl_s,
        realtime=grant,
        parent=caller.key_id or caller.key_fingerprint,
    )
    # Audited whatever `auth.audit` says, as an issued key is: a key that opens sessions.
    audited_key_change(call, _METHOD, key, "issued", event="client_secret")
    expires_at = int(key.expires_unix or 0)
    session = {"id": "sess_" + key.id.removeprefix("ck_"), "object": "realtime.session"}
    return pb.CreateRealtimeClientSecretResponse(
        value=secret,
        expires_at_unix=expires_at,
        session_json=orjson.dumps({**session, **ask.session}).decode(),
        key_id=key.id,
        fingerprint=key.fingerprint,
    )


def opening_update(beta: bool) -> str | None:
    """The `session.update` a session opened with an ephemeral client secret starts with (its
    session config; None for any other key). Without `model`: the router chose the upstream
    model (a deployment's own name), which the public one must not override; the beta
    protocol has no `type`."""
    caller = current_caller()
    grant = None if caller is None else caller.realtime_grant
    if grant is None:
        return None
    session = orjson.loads(grant.session_json)
    session.pop("model", None)
    if beta:
        session.pop("type", None)
    update = {"type": "session.update", "event_id": OPENING_EVENT_ID, "session": session}
    return orjson.dumps(update).decode()
