"""Kind `vertex` with service account keys, through a real router and the fake's token
endpoint: tokens exchanged once and cached, exchanged again before they expire (on a
ManualClock), one exchange for many calls at once, a refused exchange or a refused token the
key's AUTH_INVALID (the next key, or the next deployment, answers), and neither a key nor a
token in any log line or error."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from router_service.outcomes import Outcome
from router_service.providers._google_auth import REFRESH_MARGIN_S, TOKEN_LIFETIME_S
from router_service.providers._vertex import VertexAdapter
from tests.conformance.helpers import chat, params, stream, streamed_text
from tests.conftest import RouterHandle, StartRouter
from tests.vertex_keys import PROJECT, service_account, vertex_keys

OK = routing_pb2.OUTCOME_OK
AUTH_INVALID = routing_pb2.OUTCOME_AUTH_INVALID


def vertex_config(fake: FakeUpstream, keys: list[str], **provider: Any) -> dict[str, Any]:
    return {
        "providers": {
            "vx": {
                "kind": "vertex",
                "base_url": fake.url,
                "project": PROJECT,
                "location": "us-central1",
                "keys": keys,
                **provider,
            },
            "backup": {"kind": "openai", "base_url": fake.base_url, "keys": ["k-backup"]},
        },
        "models": {
            "gemini": {"deployments": [{"provider": "vx", "model": "gemini-2.5-flash"}]},
            "chain": {
                "deployments": [
                    {"provider": "vx", "model": "gemini-2.5-flash"},
                    {"provider": "backup", "model": "m-backup"},
                ]
            },
        },
        "server": {"port": 0},
    }


@pytest.fixture
def clock(fake: FakeUpstream) -> ManualClock:
    """One clock for the router and the token endpoint: tokens expire when the test says."""
    manual = ManualClock()
    fake.state.google.clock = manual.now
    return manual


async def start(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, labels: list[str]
) -> tuple[RouterHandle, list[str]]:
    keys = vertex_keys(fake, labels)
    router = await start_router(vertex_config(fake, keys), clock=clock)
    return router, keys


def bearers(fake: FakeUpstream) -> list[str]:
    return [r.headers["Authorization"] for r in fake.state.calls(model="gemini-2.5-flash")]


async def test_a_token_is_exchanged_once_and_reused(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router, keys = await start(fake, start_router, clock, ["sa-1"])

    first = await chat(router, params("gemini"))
    events = await stream(router, params("gemini"))
    clock.advance(TOKEN_LIFETIME_S - REFRESH_MARGIN_S - 1)  # still good for longer than the margin
    await chat(router, params("gemini"))

    assert first.completion.choices[0].message.text == "Echo: hello there"
    assert streamed_text(events) == "Echo: hello there"
    assert fake.state.google.exchanges == ["sa-1@switchboard-test.iam.gserviceaccount.com"]
    tokens = bearers(fake)
    assert len(tokens) == 3 and len(set(tokens)) == 1 and tokens[0].startswith("Bearer ya29.")
    # Recorded under the account's label, and the attempt names the configured key's fingerprint.
    assert [r.key for r in fake.state.calls()] == ["sa-1"] * 3
    assert first.route.attempts[0].key_fingerprint == fingerprint(keys[0])


async def test_a_token_is_exchanged_again_before_it_expires(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router, _ = await start(fake, start_router, clock, ["sa-1"])
    await chat(router, params("gemini"))

    clock.advance(TOKEN_LIFETIME_S - REFRESH_MARGIN_S + 1)  # alive, but not for long enough
    response = await chat(router, params("gemini"))

    assert [a.outcome for a in response.route.attempts] == [OK]
    assert len(fake.state.google.exchanges) == 2
    first, second = bearers(fake)
    assert first != second
    assert fake.state.google.refusals == []  # the new assertion's iat/exp are on the clock


async def test_many_calls_at_once_share_one_exchange(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router, _ = await start(fake, start_router, clock, ["sa-1"])

    cold = await asyncio.gather(*(chat(router, params("gemini")) for _ in range(12)))
    clock.advance(TOKEN_LIFETIME_S - REFRESH_MARGIN_S + 1)  # every call now needs a new one
    due = await asyncio.gather(*(stream(router, params("gemini")) for _ in range(12)))

    assert all(r.route.attempts[-1].outcome == OK for r in cold)
    assert all(streamed_text(events) == "Echo: hello there" for events in due)
    assert len(fake.state.google.exchanges) == 2
    tokens = bearers(fake)
    # One new token; the due calls that came while its exchange was under way used the old one,
    # alive for minutes still, rather than wait for it.
    assert len(set(tokens[:12])) == 1 and len(set(tokens[12:]) - {tokens[0]}) == 1


async def test_a_refused_exchange_sets_the_key_aside_and_the_next_key_answers(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    router, keys = await start(fake, start_router, clock, ["sa-bad", "sa-good"])
    # The token endpoint trusts another public key for sa-bad's account: its signature fails.
    impostor = service_account("sa-other")
    fake.state.google.register(
        service_account("sa-bad").client_email,
        impostor.private_key.public_key(),
        "kid-sa-bad",
        "sa-bad",
    )

    answers = [await chat(router, params("gemini")) for _ in range(3)]

    outcomes = [[(a.key_fingerprint, a.outcome) for a in r.route.attempts] for r in answers]
    bad, good = fingerprint(keys[0]), fingerprint(keys[1])
    # The first key in the config is tried first; once refused it is disabled: no later
    # request tries it again.
    assert outcomes == [[(bad, AUTH_INVALID), (good, OK)], [(good, OK)], [(good, OK)]]
    assert fake.state.google.refusals == ["Invalid JWT Signature."]
    assert {r.key for r in fake.state.calls()} == {"sa-good"}
    _assert_no_secrets(fake, keys, caplog.text)


async def test_a_key_refused_everywhere_fails_over_to_the_next_deployment(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router, keys = await start(fake, start_router, clock, ["sa-1"])
    fake.state.google.refuse.add(service_account("sa-1").client_email)

    response = await chat(router, params("chain"))

    attempts = [(a.deployment, a.outcome) for a in response.route.attempts]
    assert attempts == [("vx/gemini-2.5-flash", AUTH_INVALID), ("backup/m-backup", OK)]
    assert "token exchange" in response.route.attempts[0].detail
    assert response.route.attempts[0].key_fingerprint == fingerprint(keys[0])


async def test_the_caller_hears_the_refusal_without_the_key_or_a_token(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    router, keys = await start(fake, start_router, clock, ["sa-1"])
    await chat(router, params("gemini"))  # a token is issued and used
    fake.state.google.revoke_all()  # ...and then no longer accepted

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("gemini"))

    details = details_from_rpc_error(caught.value)
    assert (caught.value.code(), details.reason) == (grpc.StatusCode.UNAVAILABLE, "AUTH_INVALID")
    assert "invalid authentication credentials" in details.message
    text = f"{caught.value.details()} {details.message} {details.upstream_error}"
    _assert_no_secrets(fake, keys, text + caplog.text)


async def test_a_token_vertex_refuses_is_dropped_so_the_probe_exchanges_afresh(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router, keys = await start(fake, start_router, clock, ["sa-1"])
    await chat(router, params("gemini"))
    fake.state.google.revoke_all()
    adapter = router.runtime.adapters["vx"]
    assert isinstance(adapter, VertexAdapter)

    with pytest.raises(UpstreamFailure) as caught:
        await adapter.list_models(keys[0], 5.0)
    assert caught.value.outcome is Outcome.AUTH_INVALID
    assert await adapter.list_models(keys[0], 5.0) == fake.state.models  # a new token

    assert len(fake.state.google.exchanges) == 2


async def test_an_access_token_key_is_sent_as_it_is(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(vertex_config(fake, ["ya29.given-by-gcloud"]))

    response = await chat(router, params("gemini"))

    assert [a.outcome for a in response.route.attempts] == [OK]
    assert bearers(fake) == ["Bearer ya29.given-by-gcloud"]
    assert fake.state.google.exchanges == []


@pytest.mark.parametrize(
    ("scenario", "outcome"),
    [
        (Scenario.server_error(429), routing_pb2.OUTCOME_RATE_LIMITED),
        (Scenario.server_error(403), AUTH_INVALID),
        (Scenario.invalid_key(style="native"), AUTH_INVALID),
        (Scenario.server_error(404), routing_pb2.OUTCOME_UPSTREAM_ERROR),
    ],
    ids=["429-resource-exhausted", "403-permission-denied", "401-unauthenticated", "404-not-found"],
)
async def test_vertex_failures_land_on_their_outcomes(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    scenario: Scenario,
    outcome: int,
) -> None:
    router, _ = await start(fake, start_router, clock, ["sa-1"])
    fake.state.set_scenario(scenario, model="gemini-2.5-flash")

    response = await chat(router, params("chain"))

    assert [(a.deployment, a.outcome) for a in response.route.attempts] == [
        ("vx/gemini-2.5-flash", outcome),
        ("backup/m-backup", OK),
    ]


def _assert_no_secrets(fake: FakeUpstream, keys: list[str], text: str) -> None:
    issued = [t for t in fake.state.google.issued] + [
        r.headers.get("Authorization", "").removeprefix("Bearer ") for r in fake.state.calls()
    ]
    for token in filter(None, issued):
        assert token not in text
    for key in keys:
        assert key not in text
        assert "PRIVATE KEY" not in text
