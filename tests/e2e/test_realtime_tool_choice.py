"""A Realtime `session.update` whose `tool_choice` forces a call ("required", a named function)
while the session has no tools is refused as Chat refuses it (OpenAI's 400, here an `error`
event naming `session.tool_choice` and the event), and not sent upstream: the socket stays
open and later events flow. The session's tools are those of its latest update that set them,
or of its opening config (an ephemeral client secret's); a secret (or a WebRTC call's config)
that forces a call without tools is a 400 where it is asked for."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_realtime_calls import OFFER
from tests.e2e.test_realtime_client_secrets import sdk
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import client

pytestmark = pytest.mark.timeout(30)

CALLER = "sk-caller-tool-choice"
TOOL: Any = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
MESSAGE = (
    "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."
)


def config(fake: FakeUpstream) -> dict[str, Any]:
    sections = base_config(fake.base_url)
    realtime = {"provider": "alpha", "model": "gpt-realtime", "realtime": True}
    sections["models"]["voice"] = {"deployments": [realtime]}
    sections["auth"] = {"clients": [client("caller", CALLER)], "max_ephemeral_keys": 3}
    return sections


@pytest.fixture
async def edge(fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge) -> Edge:
    return await start_edge(await start_router(config(fake)))


async def update(socket: ClientConnection, event_id: str, **session: Any) -> dict[str, Any]:
    """Send a `session.update`; the event that answers it."""
    event = {"type": "session.update", "event_id": event_id, "session": session}
    await socket.send(orjson.dumps(event).decode())
    answer: dict[str, Any] = orjson.loads(await socket.recv())
    return answer


def assert_refused(answer: dict[str, Any], event_id: str) -> None:
    assert answer["type"] == "error", answer
    error = answer["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_value")
    assert (error["param"], error["message"]) == ("session.tool_choice", MESSAGE)
    assert error["event_id"] == event_id


async def test_a_forcing_tool_choice_without_tools_is_refused_and_the_session_goes_on(
    edge: Edge,
) -> None:
    url = f"ws://127.0.0.1:{edge.port}/v1/realtime?model=voice"
    protocols: Any = ["realtime", f"openai-insecure-api-key.{CALLER}"]
    async with connect(url, subprotocols=protocols) as socket:
        assert orjson.loads(await socket.recv())["type"] == "session.created"
        assert_refused(await update(socket, "e1", tool_choice="required"), "e1")
        named = {"type": "function", "name": "lookup"}
        assert_refused(await update(socket, "e2", instructions="Hi.", tool_choice=named), "e2")
        # Not sent upstream: the fake echoes the session as updated, without either choice.
        accepted = await update(socket, "e3", tools=[TOOL], tool_choice="auto")
        assert accepted["type"] == "session.updated"
        assert accepted["session"]["tool_choice"] == "auto"
        assert "instructions" not in accepted["session"]
        # The tools set before are the session's: a named choice is now taken.
        forced = await update(socket, "e4", tool_choice=named)
        assert (forced["type"], forced["session"]["tool_choice"]) == ("session.updated", named)
        # Its tools taken away in the same update: refused again ("none" is never refused).
        assert_refused(await update(socket, "e5", tools=[], tool_choice="required"), "e5")
        unforced = await update(socket, "e6", tools=[], tool_choice="none")
        assert unforced["type"] == "session.updated"
        assert_refused(await update(socket, "e7", tool_choice="required"), "e7")


async def test_a_secret_session_gives_the_tools_and_a_forcing_one_without_them_is_a_400(
    edge: Edge,
) -> None:
    async with sdk(edge, CALLER) as server_side:
        with pytest.raises(openai.BadRequestError) as refused:
            await server_side.realtime.client_secrets.create(
                session={"type": "realtime", "model": "voice", "tool_choice": "required"}
            )
        assert refused.value.body == {
            "message": MESSAGE,
            "type": "invalid_request_error",
            "param": "session.tool_choice",
            "code": "invalid_value",
        }
        with pytest.raises(openai.BadRequestError) as offered:
            await server_side.realtime.calls.create(
                sdp=OFFER, session={"type": "realtime", "model": "voice", "tool_choice": "required"}
            )
        assert offered.value.param == "session.tool_choice"
        secret = await server_side.realtime.client_secrets.create(
            session={"type": "realtime", "model": "voice", "tools": [TOOL]}
        )
    url = f"ws://127.0.0.1:{edge.port}/v1/realtime?model=voice"
    protocols: Any = ["realtime", f"openai-insecure-api-key.{secret.value}"]
    async with connect(url, subprotocols=protocols) as socket:
        created = orjson.loads(await socket.recv())
        assert created["session"]["tools"] == [TOOL]
        forced = await update(socket, "e1", tool_choice="required")
        assert (forced["type"], forced["session"]["tool_choice"]) == ("session.updated", "required")
