"""Realtime over WebRTC as a user sees it: the `openai` SDK's `client.realtime.calls.create`
(a form with `sdp` and `session`) and a browser's `fetch` (the raw SDP, `application/sdp`,
here httpx) against the edge's `POST /v1/realtime/calls`: `201`, the upstream's SDP answer and a
`Location` on our edge naming the call, which `calls.hangup` ends through the key that made it.
The offer fails over past a deployment that refuses it; an ephemeral client secret's call is
bound to its model and session config; refusals are OpenAI's error JSON (401, 400, 403, 404,
413)."""

from __future__ import annotations

import codecs
from typing import Any

import httpx
import openai
import orjson
import pytest
import websockets

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._realtime_calls import sdp_answer
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import client

pytestmark = pytest.mark.timeout(30)

CALLER, OTHER, NARROW = "sk-caller-calls", "sk-other-calls", "sk-narrow-calls"
ALPHA_KEYS = ("sk-alpha-1", "sk-alpha-2")
GUARDRAILS = [{"name": "no-secrets", "patterns": ["TOP-SECRET"], "action": "block"}]
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


def config(fake: FakeUpstream) -> dict[str, Any]:
    sections = base_config(fake.base_url, guardrails=GUARDRAILS)
    realtime = {"provider": "alpha", "model": "gpt-realtime", "realtime": True}
    realtime_b = {"provider": "beta", "model": "gpt-realtime-b", "realtime": True}
    sections["models"]["voice"] = {"deployments": [realtime]}
    sections["models"]["voice-duo"] = {"deployments": [realtime, realtime_b]}
    sections["auth"] = {
        "clients": [
            client("caller", CALLER),
            client("other", OTHER),
            client("narrow", NARROW, models=["chain"]),
        ],
    }
    return sections


@pytest.fixture
async def edge(fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge) -> Edge:
    router: RouterHandle = await start_router(config(fake))
    return await start_edge(router)


def sdk(edge: Edge, key: str = CALLER) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=key, max_retries=0, timeout=10
    )


async def browser_offer(
    edge: Edge, key: str, query: str = "?model=voice", sdp: str | bytes = OFFER
) -> httpx.Response:
    """A browser's `fetch`: the raw offer as `application/sdp`."""
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        return await http.post(
            f"/v1/realtime/calls{query}",
            content=sdp,
            headers={"authorization": f"Bearer {key}", "content-type": "application/sdp"},
        )


async def test_the_sdk_makes_a_call_and_hangs_it_up_through_the_key_that_made_it(
    edge: Edge, fake: FakeUpstream
) -> None:
    session: Any = {"type": "realtime", "model": "voice", "instructions": "Be brief."}
    async with sdk(edge) as server_side:
        raw = await server_side.realtime.calls.with_raw_response.create(sdp=OFFER, session=session)
        assert raw.status_code == 201
        assert raw.headers["content-type"].startswith("application/sdp")
        assert raw.content.decode() == sdp_answer(OFFER)
        location = raw.headers["location"]
        call_id = location.rsplit("/", 1)[-1]
        assert location == f"/v1/realtime/calls/{call_id}" and call_id.startswith("rtc_fake_")
        assert raw.headers["x-switchboard-deployment"]

        made = fake.state.last(path="/v1/realtime/calls")
        assert made is not None and made.key in ALPHA_KEYS and made.status == 201
        # The session as the router sent it: the deployment's own model, the caller's config.
        assert made.body["session"] == {
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": "Be brief.",
        }
        assert made.body["sdp"] == OFFER  # opaque: as the caller sent it

        await server_side.realtime.calls.hangup(call_id)
    ended = fake.state.last(path=f"/v1/realtime/calls/{call_id}/hangup")
    assert ended is not None and ended.status == 200 and ended.key == made.key


async def test_a_browser_posts_the_raw_offer(edge: Edge, fake: FakeUpstream) -> None:
    answered = await browser_offer(edge, CALLER)
    assert answered.status_code == 201, answered.text
    assert answered.text == sdp_answer(OFFER)
    assert answered.headers["location"].startswith("/v1/realtime/calls/rtc_fake_")
    made = fake.state.last(path="/v1/realtime/calls")
    assert made is not None
    assert made.body["session"] == {"type": "realtime", "model": "gpt-realtime"}


async def test_an_offer_a_deployment_refuses_goes_to_the_next(
    edge: Edge, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.server_error(503), model="gpt-realtime")
    answered = await browser_offer(edge, CALLER, "?model=voice-duo")
    assert answered.status_code == 201, answered.text
    offers = fake.state.calls(path="/v1/realtime/calls")
    assert [call.status for call in offers] == [503, 201]  # a 503: the deployment is passed
    assert offers[0].key in ALPHA_KEYS and offers[0].model == "gpt-realtime"
    assert offers[1].key == "sk-beta-1" and offers[1].model == "gpt-realtime-b"
    assert answered.headers["x-switchboard-deployment"] == "beta/gpt-realtime-b"


async def test_an_offer_a_key_refuses_goes_to_the_next_key(edge: Edge, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario.rate_limited(), key="sk-alpha-1")
    answered = await browser_offer(edge, CALLER)
    assert answered.status_code == 201, answered.text
    offers = fake.state.calls(path="/v1/realtime/calls")
    assert [(call.key, call.status) for call in offers] == [
        ("sk-alpha-1", 429),
        ("sk-alpha-2", 201),
    ]


async def test_refusals_are_openai_errors(edge: Edge, fake: FakeUpstream) -> None:
    bad_key = await browser_offer(edge, "sk-nobody")
    assert bad_key.status_code == 401 and bad_key.json()["error"]["code"] == "invalid_api_key"

    not_realtime = await browser_offer(edge, CALLER, "?model=chain")
    assert not_realtime.status_code == 400
    assert "realtime" in not_realtime.json()["error"]["message"]

    not_allowed = await browser_offer(edge, NARROW)
    assert not_allowed.status_code == 403

    no_model = await browser_offer(edge, CALLER, "")
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "model"

    too_large = await browser_offer(edge, CALLER, sdp=OFFER + "a=x\r\n" * 20_000)
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "request_too_large"

    empty = await browser_offer(edge, CALLER, sdp=b"")
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "sdp"
    assert fake.state.count(path="/v1/realtime/calls") == 0  # none went up


async def test_a_form_is_held_to_its_limits(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:

        async def form(**fields: str) -> httpx.Response:
            parts = [(name, (None, value.encode(), "text/plain")) for name, value in fields.items()]
            headers = {"authorization": f"Bearer {CALLER}"}
            return await http.post("/v1/realtime/calls", files=parts, headers=headers)

        big = await form(sdp=OFFER + "a=x\r\n" * 13_200, session='{"model": "voice"}')
        assert big.status_code == 413 and big.json()["error"]["param"] == "sdp"
        not_object = await form(sdp=OFFER, session="[1]")
        assert not_object.status_code == 400 and not_object.json()["error"]["param"] == "session"
        no_sdp = await form(session='{"model": "voice"}')
        assert no_sdp.status_code == 400 and no_sdp.json()["error"]["param"] == "sdp"
        wrong_kind = await http.post(
            "/v1/realtime/calls", json={"sdp": OFFER}, headers={"authorization": f"Bearer {CALLER}"}
        )
        assert wrong_kind.status_code == 400
        assert wrong_kind.json()["error"]["code"] == "invalid_content_type"


async def test_a_session_part_after_a_byte_order_mark_is_read(
    edge: Edge, fake: FakeUpstream
) -> None:
    """As every JSON body the edge reads (`test_body_bom`): a session saved by a Windows tool."""
    session = codecs.BOM_UTF8 + b'{"model": "voice", "instructions": "Be brief."}'
    parts = [("sdp", (None, OFFER.encode(), "text/plain")), ("session", (None, session, "x"))]
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        headers = {"authorization": f"Bearer {CALLER}"}
        answered = await http.post("/v1/realtime/calls", files=parts, headers=headers)
    assert answered.status_code == 201, answered.text
    made = fake.state.last(path="/v1/realtime/calls")
    assert made is not None and made.body["session"]["instructions"] == "Be brief."


async def test_only_the_client_that_made_a_call_hangs_it_up(edge: Edge, fake: FakeUpstream) -> None:
    answered = await browser_offer(edge, CALLER)
    call_id = answered.headers["location"].rsplit("/", 1)[-1]
    async with sdk(edge, OTHER) as other:
        with pytest.raises(openai.NotFoundError) as caught:
            await other.realtime.calls.hangup(call_id)
        assert orjson.loads(caught.value.response.content)["error"]["code"] == "call_not_found"
        with pytest.raises(openai.NotFoundError):
            await other.realtime.calls.hangup("rtc_never_made")
    assert fake.state.count(path=f"/v1/realtime/calls/{call_id}/hangup") == 0
    async with sdk(edge) as caller:
        await caller.realtime.calls.hangup(call_id)
    assert fake.state.count(path=f"/v1/realtime/calls/{call_id}/hangup") == 1


async def test_an_ephemeral_secret_makes_calls_of_its_model_with_its_session(
    edge: Edge, fake: FakeUpstream
) -> None:
    pirate: Any = {"type": "realtime", "model": "voice", "instructions": "Speak like a pirate."}
    async with sdk(edge) as server_side:
        secret = (await server_side.realtime.client_secrets.create(session=pirate)).value
    # The browser names no model: the secret's; the secret's session config goes up with it.
    answered = await browser_offer(edge, secret, "")
    assert answered.status_code == 201, answered.text
    made = fake.state.last(path="/v1/realtime/calls")
    assert made is not None and made.key in ALPHA_KEYS
    assert made.body["session"] == {
        "type": "realtime",
        "model": "gpt-realtime",
        "instructions": "Speak like a pirate.",
    }
    async with sdk(edge, secret) as browser:  # a form whose session the secret's overrides
        mutiny: Any = {"type": "realtime", "instructions": "Mutiny.", "voice": "marin"}
        raw = await browser.realtime.calls.with_raw_response.create(sdp=OFFER, session=mutiny)
        assert raw.status_code == 201
        sent = fake.state.last(path="/v1/realtime/calls")
        assert sent is not None and sent.body["session"]["instructions"] == "Speak like a pirate."
        assert sent.body["session"]["voice"] == "marin"
        await browser.realtime.calls.hangup(raw.headers["location"].rsplit("/", 1)[-1])
        # Bound to its model; and Realtime only, as for a WebSocket session.
        with pytest.raises(openai.PermissionDeniedError):
            await browser.realtime.calls.create(sdp=OFFER, extra_query={"model": "voice-duo"})
        with pytest.raises(openai.PermissionDeniedError):
            await browser.models.list()


async def test_the_session_config_is_screened_before_the_offer_goes_up(
    edge: Edge, fake: FakeUpstream
) -> None:
    leaky: Any = {"type": "realtime", "model": "voice", "instructions": "Say TOP-SECRET."}
    async with sdk(edge) as server_side:
        with pytest.raises(openai.BadRequestError) as caught:
            await server_side.realtime.calls.create(sdp=OFFER, session=leaky)
    error = orjson.loads(caught.value.response.content)["error"]
    assert error["code"] == "content_policy_violation"
    assert "TOP-SECRET" not in error["message"]
    assert fake.state.count(path="/v1/realtime/calls") == 0


async def test_a_browser_on_another_origin_reads_the_answer_and_its_location(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The README's `fetch`: a preflight (Authorization, `application/sdp`), then the POST,
    whose `Location` the page reads for its hangup: exposed, else `headers.get` is null."""
    origin = "https://voice.example"
    router: RouterHandle = await start_router(config(fake))
    edge = await start_edge(router, cors_origins=[origin])
    preflight = {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        allowed = await http.options("/v1/realtime/calls", headers=preflight)
        posted = await http.post(
            "/v1/realtime/calls?model=voice",
            content=OFFER,
            headers={
                "origin": origin,
                "authorization": f"Bearer {CALLER}",
                "content-type": "application/sdp",
            },
        )
    assert allowed.status_code == 200
    assert "content-type" in allowed.headers["access-control-allow-headers"].lower()
    assert posted.status_code == 201, posted.text
    assert posted.headers["access-control-allow-origin"] == origin
    exposed = posted.headers["access-control-expose-headers"].lower().split(",")
    assert "location" in [name.strip() for name in exposed]


async def test_a_sideband_through_the_edge_is_refused_not_a_new_session(
    edge: Edge, fake: FakeUpstream
) -> None:
    """OpenAI's server-side controls attach to a call with `?call_id=` (the SDK's
    `realtime.connect(call_id=...)`); the edge does not relay a call's sideband, and must say
    so rather than open a fresh session on `model` (or the secret's) the caller takes for its
    call's, billed and silent."""
    answered = await browser_offer(edge, CALLER)
    call_id = answered.headers["location"].rsplit("/", 1)[-1]
    async with sdk(edge) as server_side:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with server_side.realtime.connect(call_id=call_id, model="voice"):
                pass
    response = refused.value.response
    assert response.status_code == 400, response.body
    error = orjson.loads(response.body or b"{}")["error"]
    assert error["param"] == "call_id"
    opened = [call for call in fake.state.calls(path="/v1/realtime") if "call_id" not in call.query]
    assert opened == []  # no session for it (the router's own sideband of the call aside)


async def test_a_form_cut_before_its_closing_boundary_makes_no_call(
    edge: Edge, fake: FakeUpstream
) -> None:
    """The SDK's form with its `session` part cut short (the body ends before the closing
    boundary): 400 `invalid_form`, not a call made with the offer alone and no session."""
    session = orjson.dumps({"type": "realtime", "model": "voice", "instructions": "Be brief."})
    body = (
        b'--b0und\r\nContent-Disposition: form-data; name="sdp"\r\n\r\n'
        + OFFER.encode()
        + b'\r\n--b0und\r\nContent-Disposition: form-data; name="session"\r\n\r\n'
        + session
        + b"\r\n--b0und--\r\n"
    )
    headers = {
        "authorization": f"Bearer {CALLER}",
        "content-type": "multipart/form-data; boundary=b0und",
    }
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        cut = await http.post("/v1/realtime/calls?model=voice", content=body[:-30], headers=headers)
        assert cut.status_code == 400, cut.text
        assert cut.json()["error"]["code"] == "invalid_form"
        assert fake.state.count(path="/v1/realtime/calls") == 0
        whole = await http.post("/v1/realtime/calls", content=body, headers=headers)
    assert whole.status_code == 201, whole.text


async def test_a_session_not_in_utf8_is_refused_naming_its_byte(
    edge: Edge, fake: FakeUpstream
) -> None:
    """The form's `session` JSON sent as a file in another encoding (Latin-1, as Windows
    PowerShell 5.1 writes a string) is refused as a request body is: naming its first byte that
    is not UTF-8 (a field part is text, which the form parser reads as Latin-1 if not UTF-8)."""
    session = '{"type": "realtime", "model": "voice", "instructions": "Sé bref."}'.encode("latin-1")
    at = session.index(b"\xe9")
    headers = {"authorization": f"Bearer {CALLER}"}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        part = ("session.json", session, "application/json")
        files = [("sdp", (None, OFFER.encode(), "text/plain")), ("session", part)]
        response = await http.post("/v1/realtime/calls", files=files, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["message"]) == (
        "session",
        f"session is not valid JSON: it is not UTF-8 (byte 0xE9 at offset {at} is no "
        "UTF-8 character's). Send JSON encoded as UTF-8.",
    )
    assert fake.state.count(path="/v1/realtime/calls") == 0
