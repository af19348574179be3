"""Kind `azure` with Microsoft Entra ID service principal keys, through a real router and the
fake's Entra token endpoint: tokens exchanged once and cached, exchanged again before they
expire (on a ManualClock), one exchange for many calls at once, a refused client secret or a
refused token the key's AUTH_INVALID (the next key, or the next deployment, answers), an
`api-key` in the same pool as it always was, the real `openai` SDK through the edge, and neither
a client secret nor a token in any log line or error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from router_service.outcomes import Outcome
from router_service.providers import AzureEntraAdapter, AzureOpenAIAdapter
from router_service.providers._oauth import REFRESH_MARGIN_S
from tests.conformance.helpers import chat, params, stream, streamed_text
from tests.conftest import RouterHandle, StartRouter
from tests.entra_keys import (
    DEPLOYMENT,
    authorizations,
    azure_config,
    entra_keys,
    sdk_round_trip,
    service_principal,
)
from tests.http_edge.harness import Edge

OK = routing_pb2.OUTCOME_OK
AUTH_INVALID = routing_pb2.OUTCOME_AUTH_INVALID
LIFETIME_S = 3600  # what the fake's (and Entra's) tokens live


async def start(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, labels: list[str]
) -> tuple[RouterHandle, list[str]]:
    keys = entra_keys(fake, labels)
    router = await start_router(azure_config(fake, keys), clock=clock)
    return router, keys


async def test_a_token_is_exchanged_once_and_reused(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router, keys = await start(fake, start_router, clock, ["sp-1"])

    first = await chat(router, params("gpt"))
    events = await stream(router, params("gpt"))
    clock.advance(LIFETIME_S - REFRESH_MARGIN_S - 1)  # still good for longer than the margin
    await chat(router, params("gpt"))

    assert first.completion.choices[0].message.text == "Echo: hello there"
    assert streamed_text(events) == "Echo: hello there"
    assert fake.state.entra.exchanges == [service_principal("sp-1").client_id]
    tokens = authorizations(fake)
    assert len(tokens) == 3 and len(set(tokens)) == 1 and tokens[0].startswith("Bearer eyJ")
    assert all("api-key" not in r.headers for r in fake.state.calls())
    # Recorded under the principal's label; the attempt names the configured key's fingerprint.
    assert [r.key for r in fake.state.calls()] == ["sp-1"] * 3
    assert first.route.attempts[0].key_fingerprint == fingerprint(keys[0])


async def test_a_token_is_exchanged_again_before_it_expires(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router, _ = await start(fake, start_router, clock, ["sp-1"])
    await chat(router, params("gpt"))

    clock.advance(LIFETIME_S - REFRESH_MARGIN_S + 1)  # alive, but not for long enough
    response = await chat(router, params("gpt"))

    assert [a.outcome for a in response.route.attempts] == [OK]
    assert len(fake.state.entra.exchanges) == 2
    first, second = authorizations(fake)
    assert first != second
    assert fake.state.entra.refusals == []


async def test_many_calls_at_once_share_one_exchange(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router, _ = await start(fake, start_router, clock, ["sp-1"])

    cold = await asyncio.gather(*(chat(router, params("gpt")) for _ in range(12)))
    clock.advance(LIFETIME_S - REFRESH_MARGIN_S + 1)  # every call now needs a new one
    due = await asyncio.gather(*(stream(router, params("gpt")) for _ in range(12)))

    assert all(r.route.attempts[-1].outcome == OK for r in cold)
    assert all(streamed_text(events) == "Echo: hello there" for events in due)
    assert len(fake.state.entra.exchanges) == 2
    tokens = authorizations(fake)
    # One new token; the due calls that came while its exchange was under way used the old one,
    # alive for minutes still, rather than wait for it.
    assert len(set(tokens[:12])) == 1 and len(set(tokens[12:]) - {tokens[0]}) == 1


async def test_a_refused_secret_sets_the_key_aside_and_the_next_key_answers(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    router, keys = await start(fake, start_router, clock, ["sp-bad", "sp-good"])
    # Entra knows sp-bad's client by another secret (it was rotated): AADSTS7000215.
    bad = service_principal("sp-bad")
    fake.state.entra.register(bad.tenant_id, bad.client_id, "rotated~secret", "sp-bad")

    answers = [await chat(router, params("gpt")) for _ in range(3)]

    outcomes = [[(a.key_fingerprint, a.outcome) for a in r.route.attempts] for r in answers]
    bad_fp, good_fp = fingerprint(keys[0]), fingerprint(keys[1])
    # The first key in the config is tried first; once refused it is disabled: no later
    # request tries it again.
    assert outcomes == [[(bad_fp, AUTH_INVALID), (good_fp, OK)], [(good_fp, OK)], [(good_fp, OK)]]
    detail = answers[0].route.attempts[0].detail
    assert detail.startswith(f"token exchange of client {bad.client_id} of tenant ")
    assert "invalid_client: AADSTS7000215" in detail and "Trace ID" not in detail
    assert len(fake.state.entra.refusals) == 1
    assert {r.key for r in fake.state.calls()} == {"sp-good"}
    _assert_no_secrets(fake, ["sp-bad", "sp-good"], caplog.text + detail)


@pytest.mark.parametrize(
    "refusal",
    ["expired-secret", "unknown-client", "wrong-tenant"],
)
async def test_a_principal_entra_refuses_fails_over_to_the_next_deployment(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, refusal: str
) -> None:
    router, keys = await start(fake, start_router, clock, ["sp-1"])
    principal = service_principal("sp-1")
    if refusal == "expired-secret":
        fake.state.entra.refuse.add(principal.client_id)  # 401 invalid_client, AADSTS7000222
    elif refusal == "unknown-client":
        fake.state.entra.principals.clear()
        service_principal("sp-other").register(fake)  # 400 unauthorized_client, AADSTS700016
    else:
        fake.state.entra.principals.clear()  # 400 invalid_request, AADSTS90002

    response = await chat(router, params("chain"))

    attempts = [(a.deployment, a.outcome) for a in response.route.attempts]
    assert attempts == [(f"az/{DEPLOYMENT}", AUTH_INVALID), ("backup/m-backup", OK)]
    assert "token exchange" in response.route.attempts[0].detail
    assert response.route.attempts[0].key_fingerprint == fingerprint(keys[0])
    assert fake.state.count(model=DEPLOYMENT) == 0  # no call went to Azure without a token


async def test_the_caller_hears_the_refusal_without_the_secret_or_a_token(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    router, _ = await start(fake, start_router, clock, ["sp-1"])
    await chat(router, params("gpt"))  # a token is issued and used
    fake.state.entra.revoke_all()  # ...and then no longer accepted

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("gpt"))

    details = details_from_rpc_error(caught.value)
    assert (caught.value.code(), details.reason) == (grpc.StatusCode.UNAVAILABLE, "AUTH_INVALID")
    assert "Access token is missing, invalid" in details.message
    text = f"{caught.value.details()} {details.message} {details.upstream_error}"
    _assert_no_secrets(fake, ["sp-1"], text + caplog.text)


async def test_a_token_azure_refuses_is_dropped_so_the_probe_exchanges_afresh(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router, keys = await start(fake, start_router, clock, ["sp-1"])
    await chat(router, params("gpt"))
    fake.state.entra.revoke_all()
    adapter = router.runtime.adapters["az"]
    assert isinstance(adapter, AzureEntraAdapter)

    with pytest.raises(UpstreamFailure) as caught:
        await adapter.list_models(keys[0], 5.0)
    assert caught.value.outcome is Outcome.AUTH_INVALID
    assert await adapter.list_models(keys[0], 5.0) == fake.state.models  # a new token

    assert len(fake.state.entra.exchanges) == 2


async def test_an_api_key_beside_a_principal_is_sent_as_it_always_was(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    keys = [*entra_keys(fake, ["sp-1"]), "plain-api-key"]
    router = await start_router(azure_config(fake, keys), clock=clock)

    answers = [await chat(router, params("gpt")) for _ in range(4)]  # round robin over both

    assert all(r.route.attempts[-1].outcome == OK for r in answers)
    by_key = {r.key: r.headers for r in fake.state.calls(model=DEPLOYMENT)}
    assert set(by_key) == {"sp-1", "plain-api-key"}
    assert by_key["plain-api-key"]["api-key"] == "plain-api-key"
    assert "Authorization" not in by_key["plain-api-key"]
    assert by_key["sp-1"]["Authorization"].startswith("Bearer ")
    assert len(fake.state.entra.exchanges) == 1


@pytest.mark.parametrize(
    ("labels", "plain", "adapter"),
    [([], ["key-1", "key-2"], AzureOpenAIAdapter), (["sp-1"], ["key-1"], AzureEntraAdapter)],
    ids=["api-keys-only", "with-a-principal"],
)
async def test_the_adapter_follows_the_keys(
    fake: FakeUpstream,
    start_router: StartRouter,
    labels: list[str],
    plain: list[str],
    adapter: type[Any],
) -> None:
    router = await start_router(azure_config(fake, [*entra_keys(fake, labels), *plain]))

    # A provider of api-keys alone has the adapter it always had: nothing of Entra on the way.
    assert type(router.runtime.adapters["az"]) is adapter


async def test_the_openai_sdk_through_the_edge(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    clock: ManualClock,
) -> None:
    router, _ = await start(fake, start_router, clock, ["sp-1"])
    edge = await start_edge(router)

    await sdk_round_trip(edge.base_url)
    assert len(fake.state.entra.exchanges) == 1
    assert all(h.startswith("Bearer eyJ") for h in authorizations(fake))
    assert len(authorizations(fake)) == 3


def _assert_no_secrets(fake: FakeUpstream, labels: list[str], text: str) -> None:
    issued = list(fake.state.entra.issued) + [
        r.headers.get("Authorization", "").removeprefix("Bearer ") for r in fake.state.calls()
    ]
    for token in filter(None, issued):
        assert token not in text
    for label in labels:
        assert service_principal(label).client_secret not in text
