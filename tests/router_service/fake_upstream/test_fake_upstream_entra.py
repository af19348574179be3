"""The fake upstream speaks Microsoft Entra ID's client credentials flow: its token endpoint checks
the grant, the tenant, the client, its secret and the scope as Entra does (refusing in AADSTS
words), issues tokens that expire on its clock, and the Azure routes take a live token as
`Authorization: Bearer` (or an `api-key`, as before), refusing any other as Azure does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.entra_keys import TENANT, ServicePrincipalKey, service_principal

SCOPE = "https://cognitiveservices.azure.com/.default"
CHAT = "/openai/deployments/gpt-4o-prod/chat/completions"
VERSION = {"api-version": "2024-10-21"}
HELLO = {"messages": [{"role": "user", "content": "hello world"}]}


@pytest.fixture
def clock(fake: FakeUpstream) -> ManualClock:
    manual = ManualClock()
    fake.state.entra.clock = manual.now
    return manual


@pytest.fixture
async def http(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client:
        yield client


@pytest.fixture
def principal(fake: FakeUpstream) -> ServicePrincipalKey:
    sp = service_principal("sp-fake")
    sp.register(fake)
    return sp


def form(principal: ServicePrincipalKey, **changes: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": principal.client_id,
        "client_secret": principal.client_secret,
        "scope": SCOPE,
        **changes,
    }


async def exchange(
    http: httpx.AsyncClient, data: dict[str, str], tenant: str = TENANT
) -> httpx.Response:
    return await http.post(f"/{tenant}/oauth2/v2.0/token", data=data)


async def chat(http: httpx.AsyncClient, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return await http.post(CHAT, params=VERSION, headers=headers, json=HELLO)


async def test_client_credentials_get_a_token_that_azure_takes(
    http: httpx.AsyncClient, fake: FakeUpstream, clock: ManualClock, principal: ServicePrincipalKey
) -> None:
    granted = await exchange(http, form(principal))

    assert granted.status_code == 200
    token = granted.json()
    assert (token["token_type"], token["expires_in"]) == ("Bearer", 3600)
    resp = await chat(http, token["access_token"])
    assert resp.status_code == 200
    assert resp.json()["choices"][0]["message"]["content"] == "Echo: hello world"
    record = fake.state.last()
    assert record is not None and (record.key, record.model) == ("sp-fake", "gpt-4o-prod")
    assert fake.state.entra.exchanges == [principal.client_id]


@pytest.mark.parametrize(
    ("tenant", "changes", "status", "error", "code"),
    [
        (TENANT, {"client_secret": "not-the-secret"}, 401, "invalid_client", 7000215),
        (
            TENANT,
            {"client_id": "00000000-0000-0000-0000-000000000000"},
            400,
            "unauthorized_client",
            700016,
        ),
        ("contoso.onmicrosoft.com", {}, 400, "invalid_request", 90002),
        (TENANT, {"scope": "https://cognitiveservices.azure.com"}, 400, "invalid_scope", 1002012),
        (TENANT, {"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ],
    ids=["wrong-secret", "unknown-client", "unknown-tenant", "scope", "grant"],
)
async def test_requests_entra_refuses_are_refused_in_its_words(
    http: httpx.AsyncClient,
    fake: FakeUpstream,
    principal: ServicePrincipalKey,
    tenant: str,
    changes: dict[str, str],
    status: int,
    error: str,
    code: int,
) -> None:
    refused = await exchange(http, form(principal, **changes), tenant)

    assert refused.status_code == status
    body = refused.json()
    assert (body["error"], body["error_codes"]) == (error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "Trace ID: " in body["error_description"]
    assert fake.state.entra.exchanges == [] and len(fake.state.entra.refusals) == 1


async def test_a_refused_client_s_secret_is_expired(
    http: httpx.AsyncClient, fake: FakeUpstream, principal: ServicePrincipalKey
) -> None:
    fake.state.entra.refuse.add(principal.client_id)

    refused = await exchange(http, form(principal))

    assert refused.status_code == 401
    assert refused.json()["error_codes"] == [7000222]


async def test_a_token_stops_working_when_it_expires_on_the_clock(
    http: httpx.AsyncClient, fake: FakeUpstream, clock: ManualClock, principal: ServicePrincipalKey
) -> None:
    token = (await exchange(http, form(principal))).json()["access_token"]
    clock.advance(3599)
    assert (await chat(http, token)).status_code == 200

    clock.advance(1)
    expired = await chat(http, token)

    assert expired.status_code == 401
    assert expired.json() == {
        "statusCode": 401,
        "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
        "(https://cognitiveservices.azure.com), or have expired.",
    }
    record = fake.state.last()
    assert record is not None and record.outcome == "refused"


async def test_a_revoked_or_foreign_token_is_refused_and_an_api_key_still_works(
    http: httpx.AsyncClient, fake: FakeUpstream, principal: ServicePrincipalKey
) -> None:
    token = (await exchange(http, form(principal))).json()["access_token"]
    fake.state.entra.revoke_all()

    assert (await chat(http, token)).status_code == 401
    assert (await chat(http, "eyJ-made-up")).status_code == 401
    keyed = await http.post(CHAT, params=VERSION, headers={"api-key": "az-key-1"}, json=HELLO)
    assert keyed.status_code == 200
    assert fake.state.last(key="az-key-1") is not None


async def test_scenarios_match_a_principal_s_calls_by_its_label(
    http: httpx.AsyncClient, fake: FakeUpstream, principal: ServicePrincipalKey
) -> None:
    token = (await exchange(http, form(principal))).json()["access_token"]
    fake.state.set_scenario(Scenario.server_error(429), key="sp-fake")

    throttled = await chat(http, token)

    assert throttled.status_code == 429
