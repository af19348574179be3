"""The fake upstream speaks Azure's managed identity endpoints and Entra's federated client
assertions: IMDS wants `Metadata: true` and its api-version, App Service's endpoint its
X-IDENTITY-HEADER, each answers only for the identities assigned to the host (in their own
words), with Entra's tokens that the Azure routes take and that expire on its clock; Entra's
token endpoint takes a workload identity's federated token as its client assertion, and only
the one it trusts now."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.entra_keys import TENANT, client_id_of

IMDS = "/metadata/identity/oauth2/token"
APP_SERVICE = "/msi/token"
RESOURCE = "https://cognitiveservices.azure.com"
SCOPE = f"{RESOURCE}/.default"
CHAT = "/openai/deployments/gpt-4o-prod/chat/completions"
HELLO = {"messages": [{"role": "user", "content": "hello world"}]}
USER_ASSIGNED = client_id_of("mi-user")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def clock(fake: FakeUpstream) -> ManualClock:
    manual = ManualClock()
    fake.state.entra.clock = manual.now
    return manual


@pytest.fixture
async def http(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    fake.state.managed_identities.assign(None, "mi-system")
    fake.state.managed_identities.assign(USER_ASSIGNED, "mi-user")
    async with httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client:
        yield client


def query(version: str, **extra: str) -> dict[str, str]:
    return {"api-version": version, "resource": RESOURCE, **extra}


async def chat(http: httpx.AsyncClient, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return await http.post(CHAT, params={"api-version": "2024-10-21"}, headers=headers, json=HELLO)


async def test_imds_issues_a_token_azure_takes_until_it_expires(
    http: httpx.AsyncClient, fake: FakeUpstream, clock: ManualClock
) -> None:
    granted = await http.get(IMDS, params=query("2018-02-01"), headers={"Metadata": "true"})

    assert granted.status_code == 200
    body = granted.json()
    # IMDS's numbers are text.
    assert (body["token_type"], body["expires_in"]) == ("Bearer", "3600")
    assert body["expires_on"] == str(int(clock.now()) + 3600)
    assert (await chat(http, body["access_token"])).status_code == 200
    record = fake.state.last()
    assert record is not None and record.key == "mi-system"
    clock.advance(3600)
    assert (await chat(http, body["access_token"])).status_code == 401
    assert fake.state.entra.exchanges == ["system-assigned"]


@pytest.mark.parametrize(
    ("params", "headers", "error", "description"),
    [
        (query("2018-02-01"), {}, "bad_request_102", "Required metadata header not specified"),
        (query("2017-09-01"), {"Metadata": "true"}, "invalid_request", "Invalid api-version"),
        (
            query("2018-02-01", client_id=client_id_of("nobody")),
            {"Metadata": "true"},
            "invalid_request",
            "Identity not found",
        ),
    ],
    ids=["no-metadata-header", "api-version", "unknown-identity"],
)
async def test_imds_refuses_in_its_words(
    http: httpx.AsyncClient,
    fake: FakeUpstream,
    params: dict[str, str],
    headers: dict[str, str],
    error: str,
    description: str,
) -> None:
    refused = await http.get(IMDS, params=params, headers=headers)

    assert refused.status_code == 400
    assert refused.json() == {"error": error, "error_description": description}
    assert fake.state.entra.exchanges == [] and fake.state.entra.refusals == [description]


async def test_app_service_wants_its_header_and_says_when_the_token_expires(
    http: httpx.AsyncClient, fake: FakeUpstream, clock: ManualClock
) -> None:
    header = {"X-IDENTITY-HEADER": fake.state.managed_identities.identity_header}
    params = query("2019-08-01", client_id=USER_ASSIGNED)

    granted = await http.get(APP_SERVICE, params=params, headers=header)
    forbidden = await http.get(APP_SERVICE, params=params, headers={"X-IDENTITY-HEADER": "x"})
    unknown = await http.get(APP_SERVICE, params=query("2019-08-01", client_id="x"), headers=header)

    body = granted.json()
    assert "expires_in" not in body and body["expires_on"] == str(int(clock.now()) + 3600)
    assert (await chat(http, body["access_token"])).status_code == 200
    record = fake.state.last()
    assert record is not None and record.key == "mi-user"
    assert forbidden.status_code == 403
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "Unable to load the proper Managed Identity."
    assert fake.state.entra.exchanges == [USER_ASSIGNED]


async def test_entra_takes_only_the_federated_token_it_trusts_now(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    client_id = client_id_of("wi-1")
    fake.state.entra.register_federated(TENANT, client_id, "eyJ.first", "wi-1")
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_assertion_type": JWT_BEARER,
        "scope": SCOPE,
    }
    token_url = f"/{TENANT}/oauth2/v2.0/token"

    first = await http.post(token_url, data={**form, "client_assertion": "eyJ.first"})
    fake.state.entra.register_federated(TENANT, client_id, "eyJ.second", "wi-1")  # rotated
    stale = await http.post(token_url, data={**form, "client_assertion": "eyJ.first"})
    second = await http.post(token_url, data={**form, "client_assertion": "eyJ.second"})
    secret = await http.post(token_url, data={**form, "client_assertion_type": "x"})

    assert (first.status_code, second.status_code) == (200, 200)
    assert (await chat(http, second.json()["access_token"])).status_code == 200
    assert (stale.status_code, stale.json()["error_codes"]) == (400, [70021])
    assert (secret.status_code, secret.json()["error"]) == (400, "invalid_request")
    assert fake.state.entra.exchanges == [client_id, client_id]
