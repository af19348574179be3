"""The Realtime API as a user sees it: the official `openai` SDK's `client.realtime.connect`
(and a browser's subprotocol handshake, with the `websockets` client the SDK uses) → the edge's
`/v1/realtime` → the router's Realtime RPC → the fake upstream's realtime socket (OpenAI's and
Azure's). A session streams a text response; a refused key fails over before anything is
relayed; the caller closing closes the upstream socket; refusals before the handshake are HTTP
errors; a guardrail's block ends the session with an error event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest
import websockets
from websockets.asyncio.client import connect

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.helpers import eventually
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import client

pytestmark = pytest.mark.timeout(30)

ALLOWED = "sk-allowed"  # may use `voice` only
GUARDRAILS = [
    {"name": "no-secrets", "patterns": ["TOP-SECRET"], "action": "block"},
    {"name": "no-passwords", "patterns": ["hunter2"], "action": "redact"},
]


def config(fake: FakeUpstream) -> dict[str, Any]:
    sections = base_config(fake.base_url, guardrails=GUARDRAILS)
    sections["providers"]["az"] = {
        "kind": "azure",
        "base_url": fake.url,
        "keys": ["az-key"],
        "api_version": "2025-04-01-preview",
    }
    sections["models"]["voice"] = {
        "deployments": [
            {"provider": "alpha", "model": "gpt-realtime", "realtime": True},
            {"provider": "beta", "model": "gpt-realtime-b", "realtime": True},
        ]
    }
    sections["models"]["azure-voice"] = {
        "deployments": [{"provider": "az", "model": "realtime-prod", "realtime": True}]
    }
    sections["auth"] = {
        "clients": [client("caller", "sk-caller"), client("narrow", ALLOWED, models=["voice"])]
    }
    return sections


@pytest.fixture(params=[False, True], ids=["grpc", "in-process"])
async def stack(
    request: pytest.FixtureRequest,
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
) -> AsyncIterator[tuple[RouterHandle, Edge, openai.AsyncOpenAI]]:
    """Also with the edge calling the router in-process (`switchboard serve`): the Realtime RPC
    is the one bidirectional call."""
    router = await start_router(config(fake))
    edge = await start_edge(router, in_process=request.param)
    sdk = openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    )
    yield router, edge, sdk
    await sdk.close()


async def ask(connection: Any, text: str) -> list[Any]:
    """Send a user message and ask for a response; the events up to its `response.done`."""
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    await connection.conversation.item.create(item=item)
    await connection.response.create()
    events = []
    async for event in connection:
        events.append(event)
        if event.type in ("response.done", "error"):
            return events
    return events


async def test_a_session_streams_text_after_failing_over_a_refused_key(
    stack: tuple[RouterHandle, Edge, openai.AsyncOpenAI], fake: FakeUpstream
) -> None:
    router, _, sdk = stack
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="sk-alpha-1")
    async with sdk.realtime.connect(model="voice") as connection:
        await connection.session.update(session={"type": "realtime", "instructions": "Be brief."})
        redacted = await ask(connection, "my hunter2")  # rewritten before the upstream sees it
        events = await ask(connection, "hello there")
    said = "".join(e.delta + " " for e in redacted if e.type == "response.output_text.delta")
    assert "hunter2" not in said and "[REDACTED" in said
    assert [e.type for e in redacted[:2]] == ["session.created", "session.updated"]
    kinds = [e.type for e in events]
    assert kinds[0] == "conversation.item.added" and kinds[-1] == "response.done"
    text = "".join(e.delta + " " for e in events if e.type == "response.output_text.delta")
    assert text.strip() == "You said: hello there"
    assert events[-1].response.usage.total_tokens == 14
    calls = await fake.state.wait_for_count(2, path="/v1/realtime")
    assert [(c.key, c.status) for c in calls] == [("sk-alpha-1", 401), ("sk-alpha-2", 101)]
    assert calls[1].outcome == "ok"  # the caller's close closed the upstream socket

    async def released() -> bool:  # after the router's call ended, a moment after the socket
        return await router.leases_held() == 0

    await eventually(released, what="the session's key lease released")


async def test_azure_and_the_browser_subprotocol(
    stack: tuple[RouterHandle, Edge, openai.AsyncOpenAI], fake: FakeUpstream
) -> None:
    _, edge, _ = stack
    url = f"ws://127.0.0.1:{edge.port}/v1/realtime?model=azure-voice"
    protocols = ["realtime", "openai-insecure-api-key.sk-caller", "openai-beta.realtime-v1"]
    async with connect(url, subprotocols=protocols) as socket:  # type: ignore[arg-type]
        assert socket.subprotocol == "realtime"
        assert socket.response is not None
        assert socket.response.headers["x-switchboard-deployment"] == "az/realtime-prod"
        first = orjson.loads(await socket.recv())
        await socket.send(orjson.dumps({"type": "response.create"}).decode())
        kinds = [first["type"]]
        while kinds[-1] != "response.done":
            kinds.append(orjson.loads(await socket.recv())["type"])
    assert kinds[:2] == ["session.created", "response.created"]
    assert "response.text.delta" in kinds  # the beta protocol's name, asked by the subprotocol
    (call,) = await fake.state.wait_for_count(1, path="/openai/realtime")
    assert (call.key, call.model) == ("az-key", "realtime-prod")
    assert call.query["api-version"] == "2025-04-01-preview"
    assert call.headers["OpenAI-Beta"] == "realtime=v1"


async def test_refusals_before_the_handshake_are_http_errors(
    stack: tuple[RouterHandle, Edge, openai.AsyncOpenAI],
) -> None:
    _, edge, _ = stack
    base = f"ws://127.0.0.1:{edge.port}/v1/realtime"
    cases = [
        ("voice", "sk-wrong", 401, "invalid_api_key"),
        ("chain", ALLOWED, 403, "model_not_allowed"),
        ("chain", "sk-caller", 400, None),  # no deployment of `chain` is realtime
    ]
    for model, key, status, code in cases:
        headers = {"Authorization": f"Bearer {key}"}
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(f"{base}?model={model}", additional_headers=headers):
                pass
        response = info.value.response
        assert response.status_code == status, (model, key, response.body)
        error = orjson.loads(response.body or b"{}")["error"]
        assert code is None or error["code"] == code
        assert "sk-" not in error["message"]


async def test_a_blocked_text_ends_the_session_with_an_error_event(
    stack: tuple[RouterHandle, Edge, openai.AsyncOpenAI], fake: FakeUpstream
) -> None:
    _, _, sdk = stack
    async with sdk.realtime.connect(model="voice") as connection:
        events = await ask(connection, "the TOP-SECRET plan")
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await connection.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert [e.type for e in events] == ["session.created", "error"]
    assert events[-1].error.code == "content_policy_violation"
    (call,) = await fake.state.wait_for_count(1, path="/v1/realtime")
    assert call.outcome == "ok"  # the text never reached it; its socket was closed


async def test_an_event_the_upstream_finds_too_large_ends_the_session_as_the_callers(
    stack: tuple[RouterHandle, Edge, openai.AsyncOpenAI], fake: FakeUpstream
) -> None:
    """An upstream closing with 1009 (message too big) refused the caller's event: the caller
    hears so with that close code, and the deployment is not cooled for it (the next session
    opens on it, not on the group's other one)."""
    _, _, sdk = stack
    audio = "A" * (5 * 1024 * 1024)  # over the fake upstream's 4 MiB, under the router's 16
    async with sdk.realtime.connect(model="voice") as connection:
        assert (await connection.recv()).type == "session.created"
        await connection.input_audio_buffer.append(audio=audio)
        told = await connection.recv()
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await connection.recv()
    assert told.type == "error" and told.error.type == "invalid_request_error"
    assert told.error.code == "event_too_large"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    async with sdk.realtime.connect(model="voice") as connection:
        assert (await ask(connection, "hello"))[-1].type == "response.done"
    calls = await fake.state.wait_for_count(2, path="/v1/realtime")
    assert [call.model for call in calls] == ["gpt-realtime", "gpt-realtime"]


@pytest.mark.parametrize("code", [1009, 1003, 1007])
async def test_an_upstream_refusing_small_events_is_its_failure_not_the_callers(
    stack: tuple[RouterHandle, Edge, openai.AsyncOpenAI], fake: FakeUpstream, code: int
) -> None:
    """A close 1009 after the caller sent nothing over 1 MiB (something in front of the
    upstream refusing every event), or a 1003/1007 (the caller's events reach it as valid
    UTF-8 text), is the upstream's failure: upstream_error, 1011, the deployment cooled."""
    _, _, sdk = stack
    async with sdk.realtime.connect(model="voice") as connection:
        assert (await connection.recv()).type == "session.created"
        await connection.send({"type": "fake.close", "code": code})  # type: ignore[arg-type]
        told = await connection.recv()
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await connection.recv()
    assert told.type == "error" and told.error.code == "upstream_error"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


async def test_an_event_too_large_from_the_upstream_is_its_fault_not_the_callers(
    stack: tuple[RouterHandle, Edge, openai.AsyncOpenAI], fake: FakeUpstream
) -> None:
    """The router's own socket closing 1009 on an upstream event over its 16 MiB is the
    upstream's failure (upstream_error, 1011, the deployment cooled), never told to the caller
    as an event of theirs too large: else a broken upstream hides behind its callers."""
    _, _, sdk = stack
    fake.state.set_scenario(Scenario(content=" ".join(["x" * 500_000] * 26)))  # audio: 17 MB
    async with sdk.realtime.connect(model="voice") as connection:
        assert (await connection.recv()).type == "session.created"
        await connection.response.create(response={"output_modalities": ["audio"]})
        events = []
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            while True:
                events.append(await connection.recv())
    told = events[-1]
    assert told.type == "error" and told.error.code == "upstream_error"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


async def test_a_router_stop_tells_the_caller_to_reconnect_with_1012(
    stack: tuple[RouterHandle, Edge, openai.AsyncOpenAI],
) -> None:
    router, _, sdk = stack
    async with sdk.realtime.connect(model="voice") as connection:
        assert (await connection.recv()).type == "session.created"
        stopping = asyncio.create_task(router.server.shutdown(grace=60))
        told = await connection.recv()
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await connection.recv()
        async with asyncio.timeout(10):  # not the grace: the session ended at the stop's start
            await stopping
    assert told.type == "error" and told.error.code == "server_restarting"
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1012, "service restart")


@pytest.mark.parametrize("in_process", [False, True], ids=["grpc", "in-process"])
async def test_a_session_the_caller_closes_is_counted_a_success(
    in_process: bool, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Closing the socket is how a caller ends a session: the router's request ends OK (the
    edge reads the call to its end after the router's close, not cancelling it), not CANCELLED
    in `switchboard.requests` and an error on its span."""
    with TelemetryCapture(tracing=False) as captured:
        edge = await start_edge(await start_router(config(fake)), in_process=in_process)
        async with openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
        ) as sdk:
            async with sdk.realtime.connect(model="voice") as connection:
                events = await ask(connection, "hello")
        assert events[-1].type == "response.done"
        assert await realtime_outcomes(captured) == ["OK"]


@pytest.mark.parametrize("in_process", [False, True], ids=["grpc", "in-process"])
async def test_a_session_the_caller_closes_mid_response_is_counted_a_success(
    in_process: bool, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A caller that hangs up while a response streams ends its session as any close does: the
    events still on their way to it (the edge's write to the closed socket fails) are read to
    the router's close, and the request counts OK, not CANCELLED by the edge leaving the call."""
    with TelemetryCapture(tracing=False) as captured:
        edge = await start_edge(await start_router(config(fake)), in_process=in_process)
        fake.state.set_scenario(Scenario(content=" ".join(["x" * 20_000] * 1000)))  # 20 MB
        url = f"ws://127.0.0.1:{edge.port}/v1/realtime?model=voice"
        headers = {"Authorization": "Bearer sk-caller"}
        async with connect(url, additional_headers=headers) as socket:
            assert orjson.loads(await socket.recv())["type"] == "session.created"
            await socket.send(orjson.dumps({"type": "response.create"}).decode())

            async def streaming() -> bool:  # the caller reads none: they are under way to it
                return fake.state.calls(path="/v1/realtime")[0].chunks_sent >= 50

            await eventually(streaming, what="the response streaming")
        assert await realtime_outcomes(captured) == ["OK"]


async def realtime_outcomes(captured: TelemetryCapture) -> list[str]:
    """The outcomes `switchboard.requests` counted for realtime sessions, once one is."""

    def counted() -> list[str]:
        points = [labels for labels, _ in captured.points("switchboard.requests")]
        return [
            p["switchboard.outcome"] for p in points if p.get("gen_ai.operation.name") == "realtime"
        ]

    async def ended() -> bool:
        return bool(counted())

    await eventually(ended, what="the session counted")
    return counted()
