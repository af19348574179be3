"""Ephemeral Realtime client secrets as a user sees them: the `openai` SDK's
`client.realtime.client_secrets.create` against the edge (`POST /v1/realtime/client_secrets`),
then a browser's WebSocket handshake with the secret as its subprotocol key (the `websockets`
client): the session starts with the secret's session config (`session.created` carries what
the fake upstream echoes back in its `session.updated`, which the browser does not see; an
`error` answering it comes after `session.created`). `?model=` may be left out. The secret
opens Realtime sessions of its model only; any other
call with it is 403; past its expiry (the router's ManualClock) it is 401; a client that may not
open Realtime sessions gets none; a bad `expires_after` is a 400 naming the field."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
import websockets
from openai.types.realtime import RealtimeSessionCreateRequestParam
from websockets.asyncio.client import connect

from router_service.auth import EPHEMERAL_PREFIX
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.server._realtime_secrets import OPENING_EVENT_ID
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import client

pytestmark = pytest.mark.timeout(30)

START = 1_700_000_000.0
CALLER, EMBEDDER, NARROW = "sk-caller-secrets", "sk-embedder-secrets", "sk-narrow-secrets"
GUARDRAILS = [{"name": "no-secrets", "patterns": ["TOP-SECRET"], "action": "block"}]
PIRATE: RealtimeSessionCreateRequestParam = {
    "type": "realtime",
    "model": "voice",
    "instructions": "Speak like a pirate.",
}


def config(fake: FakeUpstream) -> dict[str, Any]:
    sections = base_config(fake.base_url, guardrails=GUARDRAILS)
    sections["models"]["voice"] = {
        "deployments": [{"provider": "alpha", "model": "gpt-realtime", "realtime": True}]
    }
    sections["models"]["voice-b"] = {
        "deployments": [{"provider": "beta", "model": "gpt-realtime-b", "realtime": True}]
    }
    sections["models"]["voice-duo"] = {
        "deployments": [
            {"provider": "alpha", "model": "gpt-realtime", "realtime": True},
            {"provider": "beta", "model": "gpt-realtime-b", "realtime": True},
        ]
    }
    sections["auth"] = {
        "clients": [
            client("caller", CALLER),
            client("embedder", EMBEDDER, scopes=["embed"]),
            client("narrow", NARROW, models=["voice-b"]),
        ],
        "max_issued_keys": 1,
        "max_ephemeral_keys": 3,
    }
    return sections


Stack = tuple[RouterHandle, Edge, ManualClock]


@pytest.fixture
async def stack(fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge) -> Stack:
    clock = ManualClock(START)
    router = await start_router(config(fake), clock=clock)
    return router, await start_edge(router), clock


def sdk(edge: Edge, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=key, max_retries=0, timeout=10
    )


async def browser_session(
    edge: Edge, secret: str, model: str | None = "voice"
) -> list[dict[str, Any]]:
    """A browser's session: the handshake with the secret as its subprotocol key (`?model=`
    unless None), a response asked for; the events up to its `response.done`."""
    url = f"ws://127.0.0.1:{edge.port}/v1/realtime"
    if model is not None:
        url += f"?model={model}"
    protocols = ["realtime", f"openai-insecure-api-key.{secret}"]
    async with connect(url, subprotocols=protocols) as socket:  # type: ignore[arg-type]
        events = [orjson.loads(await socket.recv())]
        await socket.send(orjson.dumps({"type": "response.create"}).decode())
        while events[-1]["type"] != "response.done":
            events.append(orjson.loads(await socket.recv()))
    return events


async def refused_handshake(
    edge: Edge, secret: str, model: str | None = "voice"
) -> tuple[int, Any]:
    with pytest.raises(websockets.InvalidStatus) as info:
        await browser_session(edge, secret, model)
    response = info.value.response
    return response.status_code, orjson.loads(response.body or b"{}")["error"]


async def test_a_secret_opens_sessions_with_its_session_config(
    stack: Stack, fake: FakeUpstream
) -> None:
    _, edge, _ = stack
    async with sdk(edge, CALLER) as server_side:
        made = await server_side.realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": 120}, session=PIRATE
        )
    assert made.value.startswith(EPHEMERAL_PREFIX) and len(made.value) > 40
    assert made.expires_at == START + 120
    assert made.session.type == "realtime" and made.session.id.startswith("sess_")
    assert made.session.instructions == "Speak like a pirate."

    # A secret opens sessions until it expires; `?model=` may name its model, or be left out.
    for model in ("voice", None):
        events = await browser_session(edge, made.value, model)
        kinds = [event["type"] for event in events]
        # As OpenAI shows it: the session created already configured, no `session.updated`.
        assert kinds[:2] == ["session.created", "response.created"]
        assert "session.updated" not in kinds
        created = events[0]["session"]  # the fake upstream's session, as it was told
        assert created["instructions"] == "Speak like a pirate."
        assert created["model"] == "gpt-realtime"  # the router's choice, not overridden
    calls = await fake.state.wait_for_count(2, path="/v1/realtime")
    assert [(call.model, call.status) for call in calls] == [("gpt-realtime", 101)] * 2


async def test_an_upstream_that_drops_before_configuring_the_session_fails_over(
    stack: Stack, fake: FakeUpstream
) -> None:
    """Until the upstream answered the session config, nothing was relayed: an upstream that
    drops the socket then is passed over as one refusing the handshake would be."""
    _, edge, _ = stack
    fake.state.set_scenario(Scenario(reset_after_chunks=1), model="gpt-realtime")
    async with sdk(edge, CALLER) as server_side:
        made = await server_side.realtime.client_secrets.create(
            session={**PIRATE, "model": "voice-duo"}
        )
    events = await browser_session(edge, made.value, model=None)
    assert [event["type"] for event in events[:2]] == ["session.created", "response.created"]
    assert events[0]["session"]["model"] == "gpt-realtime-b"
    assert events[0]["session"]["instructions"] == "Speak like a pirate."
    dropped, served = await fake.state.wait_for_count(2, path="/v1/realtime")
    assert (dropped.model, dropped.outcome) == ("gpt-realtime", "reset")
    assert served.model == "gpt-realtime-b"


async def test_a_session_config_the_upstream_refuses_is_told_after_session_created(
    stack: Stack,
) -> None:
    """The upstream's `error` answering the secret's session config comes right after
    `session.created` (the session unconfigured), naming the router's `session.update`."""
    _, edge, _ = stack
    robot: RealtimeSessionCreateRequestParam = {
        **PIRATE,
        "audio": {"output": {"voice": "robot"}},
    }
    async with sdk(edge, CALLER) as server_side:
        made = await server_side.realtime.client_secrets.create(session=robot)
    events = await browser_session(edge, made.value, model=None)
    created, error = events[0], events[1]
    assert (created["type"], error["type"]) == ("session.created", "error")
    assert "instructions" not in created["session"]
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["param"] == "session.audio.output.voice"
    assert error["error"]["event_id"] == OPENING_EVENT_ID
    assert "session.updated" not in [event["type"] for event in events]


async def test_a_secret_serves_its_model_and_realtime_only_until_it_expires(
    stack: Stack,
) -> None:
    _, edge, clock = stack
    async with sdk(edge, CALLER) as server_side:
        made = await server_side.realtime.client_secrets.create(session=PIRATE)
    assert made.expires_at == START + 600  # OpenAI's default
    async with sdk(edge, made.value) as browser:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await browser.chat.completions.create(
                model="voice", messages=[{"role": "user", "content": "hi"}]
            )
        assert caught.value.code == "ephemeral_key_realtime_only"
        with pytest.raises(openai.PermissionDeniedError):  # no secret from a secret
            await browser.realtime.client_secrets.create(session=PIRATE)
    status, error = await refused_handshake(edge, made.value, model="voice-b")
    assert (status, error["code"]) == (403, "model_not_allowed")
    status, error = await refused_handshake(edge, CALLER, model=None)  # a key names it
    assert (status, error["param"]) == (400, "model")

    clock.advance(599)
    assert (await browser_session(edge, made.value))[-1]["type"] == "response.done"
    clock.advance(1)
    status, error = await refused_handshake(edge, made.value)
    assert (status, error["code"]) == (401, "invalid_api_key")
    assert made.value not in error["message"]


async def test_the_session_config_is_screened_as_the_callers_own_events(
    stack: Stack, fake: FakeUpstream
) -> None:
    """A block in the secret's instructions refuses each session it would open, before an
    upstream socket is opened for it, as it would end a session whose caller sent them."""
    router, edge, _ = stack
    async with sdk(edge, CALLER) as server_side:
        made = await server_side.realtime.client_secrets.create(
            session={**PIRATE, "instructions": "Recite the TOP-SECRET plans."}
        )
    status, error = await refused_handshake(edge, made.value)
    assert status == 400 and "TOP-SECRET" not in error["message"]
    assert fake.state.calls(path="/v1/realtime") == []
    assert await router.leases_held() == 0


async def test_who_may_have_a_secret_and_how_many(stack: Stack) -> None:
    _, edge, _ = stack
    async with sdk(edge, EMBEDDER) as embedder, sdk(edge, NARROW) as narrow:
        with pytest.raises(openai.PermissionDeniedError) as caught:  # no `chat` scope
            await embedder.realtime.client_secrets.create(session=PIRATE)
        assert caught.value.code == "missing_scope"
        with pytest.raises(openai.PermissionDeniedError) as caught:  # `voice` not its model
            await narrow.realtime.client_secrets.create(session=PIRATE)
        assert caught.value.code == "model_not_allowed"
    async with sdk(edge, CALLER) as caller:
        # Apart from `max_issued_keys` (1): `max_ephemeral_keys` (3) of them.
        for _ in range(3):
            await caller.realtime.client_secrets.create(session=PIRATE)
        with pytest.raises(openai.RateLimitError) as limited:
            await caller.realtime.client_secrets.create(session=PIRATE)
        assert limited.value.code == "client_key_limit"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"expires_after": {"anchor": "created_at", "seconds": 9}, "session": PIRATE}, "seconds"),
        ({"expires_after": {"seconds": 7201}, "session": PIRATE}, "seconds"),
        ({"expires_after": {"seconds": "600"}, "session": PIRATE}, "seconds"),
        ({"expires_after": {"anchor": "now", "seconds": 60}, "session": PIRATE}, "anchor"),
        ({"expires_after": 600, "session": PIRATE}, "expires_after"),
        ({"session": {"type": "realtime"}}, "session.model"),
        ({"session": {**PIRATE, "type": "transcription"}}, "session.type"),
        ({"session": "voice"}, "session"),
    ],
)
async def test_a_wrong_field_is_a_400_naming_it(
    stack: Stack, body: dict[str, Any], param: str
) -> None:
    _, edge, _ = stack
    async with sdk(edge, CALLER) as caller:
        with pytest.raises(openai.BadRequestError) as caught:
            await caller.post("/realtime/client_secrets", body=body, cast_to=object)
    expected = param if param.startswith(("session", "expires_after")) else None
    assert caught.value.param == (expected or f"expires_after.{param}")
