"""A Realtime session config is screened by the gate, before the call is counted, as any other
request's texts are: an ephemeral client secret's (each WebSocket session and WebRTC call it
opens) and a WebRTC offer's own. A block is a 400 that takes no place in the client's `rpm` and
is audited as `denied` (by the rule, never the text); a redaction reaches the upstream and is
audited as `redacted` (`auth.audit: all`)."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest
from websockets.asyncio.client import connect

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_realtime_calls import OFFER, browser_offer
from tests.e2e.test_realtime_client_secrets import browser_session, refused_handshake, sdk
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import client

pytestmark = pytest.mark.timeout(30)

CALLER, UNLIMITED = "sk-caller-screened", "sk-unlimited-screened"
GUARDRAILS = [
    {"name": "no-secrets", "patterns": ["TOP-SECRET"], "action": "block"},
    {"name": "no-pins", "patterns": ["PIN-[0-9]+"], "action": "redact"},
]
BLOCKED: Any = {
    "type": "realtime",
    "model": "voice",
    "instructions": "Recite the TOP-SECRET plans.",
}
PINNED: Any = {
    "type": "realtime",
    "model": "voice",
    "instructions": "The caller's code is PIN-1234.",
}


def config(fake: FakeUpstream) -> dict[str, Any]:
    sections = base_config(fake.base_url, guardrails=GUARDRAILS)
    realtime = {"provider": "alpha", "model": "gpt-realtime", "realtime": True}
    sections["models"]["voice"] = {"deployments": [realtime]}
    sections["auth"] = {
        "clients": [client("caller", CALLER, rpm=2), client("unlimited", UNLIMITED)],
        "audit": "all",
    }
    return sections


@pytest.fixture
async def edge(fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge) -> Edge:
    return await start_edge(await start_router(config(fake)))


async def test_a_blocked_session_config_is_not_counted_and_is_audited_denied(
    edge: Edge, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    async with sdk(edge, CALLER) as server_side:
        secret = await server_side.realtime.client_secrets.create(session=BLOCKED)  # rpm 1 of 2
        for _ in range(2):  # each refused, none counted
            status, error = await refused_handshake(edge, secret.value)
            assert (status, error["code"]) == (400, "content_policy_violation")
            offered = await browser_offer(edge, secret.value)
            assert offered.status_code == 400, offered.text
            with pytest.raises(openai.BadRequestError):  # the caller's own offer's config
                await server_side.realtime.calls.create(sdp=OFFER, session=BLOCKED)
        await server_side.realtime.client_secrets.create(session=PINNED)  # rpm 2 of 2
    assert fake.state.calls(path="/v1/realtime") == []
    assert fake.state.calls(path="/v1/realtime/calls") == []
    denied = [r.__dict__ for r in caplog.records if r.name == "switchboard.audit"]
    denied = [r for r in denied if r.get("outcome") == "denied"]
    methods = sorted(str(r["method"]).rsplit("/", 1)[-1] for r in denied)
    assert methods == ["CreateRealtimeCall"] * 4 + ["Realtime"] * 2
    assert {r["reason"] for r in denied} == {"guardrail:no-secrets:pattern"}
    assert "TOP-SECRET" not in caplog.text


async def test_a_secret_session_config_reaches_the_upstream_redacted_and_audited(
    edge: Edge, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    async with sdk(edge, UNLIMITED) as server_side:
        secret = await server_side.realtime.client_secrets.create(session=PINNED)
    events = await browser_session(edge, secret.value)
    assert events[0]["type"] == "session.created"
    assert events[0]["session"]["instructions"] == "The caller's code is [REDACTED:pattern]."
    offered = await browser_offer(edge, secret.value)
    assert offered.status_code == 201, offered.text
    made = fake.state.last(path="/v1/realtime/calls")
    assert made is not None
    assert made.body["session"]["instructions"] == "The caller's code is [REDACTED:pattern]."
    audited = [r.__dict__ for r in caplog.records if r.name == "switchboard.audit"]
    redacted = [
        (str(r["method"]).rsplit("/", 1)[-1], r["reason"])
        for r in audited
        if r.get("outcome") == "redacted"
    ]
    assert redacted == [
        ("Realtime", "guardrail:no-pins"),
        ("CreateRealtimeCall", "guardrail:no-pins"),
    ]
    assert "PIN-1234" not in caplog.text


async def test_a_redacted_secret_session_names_its_rules_without_rate_limits(edge: Edge) -> None:
    """The rules that redacted a secret's session config are on the WebSocket session's route
    (`x-switchboard-guardrails`), for a client with no rpm or tpm as for one with them."""
    for key in (UNLIMITED, CALLER):
        async with sdk(edge, key) as server_side:
            secret = (await server_side.realtime.client_secrets.create(session=PINNED)).value
        url = f"ws://127.0.0.1:{edge.port}/v1/realtime?model=voice"
        protocols: Any = ["realtime", f"openai-insecure-api-key.{secret}"]
        async with connect(url, subprotocols=protocols) as socket:
            assert socket.response is not None
            assert socket.response.headers.get("x-switchboard-guardrails") == "no-pins", key


async def test_a_hangup_with_a_secret_does_not_screen_its_session_config(
    edge: Edge, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """A hangup sends no text upstream: the secret's config is not screened again there (a rule
    a reload added must not keep a browser from ending its call; no `redacted` audit line)."""
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    async with sdk(edge, UNLIMITED) as server_side:
        pinned = (await server_side.realtime.client_secrets.create(session=PINNED)).value
        blocked = (await server_side.realtime.client_secrets.create(session=BLOCKED)).value
    offered = await browser_offer(edge, pinned)
    assert offered.status_code == 201, offered.text
    async with sdk(edge, pinned) as browser:
        await browser.realtime.calls.hangup(offered.headers["location"].rsplit("/", 1)[-1])
    async with sdk(edge, blocked) as browser:
        with pytest.raises(openai.NotFoundError):  # not a content policy refusal
            await browser.realtime.calls.hangup("rtc_never_made")
    audited = [r.__dict__ for r in caplog.records if r.name == "switchboard.audit"]
    acted = [r for r in audited if r.get("outcome") in ("redacted", "denied")]
    assert [str(r["method"]).rsplit("/", 1)[-1] for r in acted] == ["CreateRealtimeCall"]
