"""The fake upstream speaks Vertex AI: Google's OAuth2 token endpoint checks a service account's
JWT as Google does (RS256 signature against the registered public key, `aud`, `iss`, `scope`,
`iat`/`exp` on its clock) and issues tokens that expire on that clock; the Vertex routes take
only a live bearer token, and say their failures in google.rpc's words."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.vertex_keys import PROJECT, ServiceAccountKey, service_account

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
MODELS = f"/v1/projects/{PROJECT}/locations/us-central1/publishers"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello world"}]}]}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(account: ServiceAccountKey, claims: dict[str, Any], **header: Any) -> str:
    head = {"alg": "RS256", "typ": "JWT", "kid": account.key_id, **header}
    signing_input = f"{b64(orjson.dumps(head))}.{b64(orjson.dumps(claims))}"
    signature = account.private_key.sign(
        signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture
def clock(fake: FakeUpstream) -> ManualClock:
    manual = ManualClock()
    fake.state.google.clock = manual.now
    return manual


@pytest.fixture
async def http(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client:
        yield client


@pytest.fixture
def account(fake: FakeUpstream) -> ServiceAccountKey:
    sa = service_account("sa-fake")
    sa.register(fake)
    return sa


def claims(fake: FakeUpstream, clock: ManualClock, **changes: Any) -> dict[str, Any]:
    now = int(clock.now())
    base = {
        "iss": service_account("sa-fake").client_email,
        "scope": SCOPE,
        "aud": f"{fake.url}/token",
        "iat": now,
        "exp": now + 3600,
    }
    return {**base, **changes}


async def exchange(http: httpx.AsyncClient, assertion: str) -> httpx.Response:
    return await http.post("/token", data={"grant_type": GRANT, "assertion": assertion})


async def test_a_well_signed_assertion_gets_a_token_that_vertex_takes(
    http: httpx.AsyncClient, fake: FakeUpstream, clock: ManualClock, account: ServiceAccountKey
) -> None:
    granted = await exchange(http, jwt(account, claims(fake, clock)))

    assert granted.status_code == 200
    token = granted.json()
    assert (token["token_type"], token["expires_in"]) == ("Bearer", 3600)
    resp = await http.post(
        f"{MODELS}/google/models/gemini-2.5-flash:generateContent",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        json=HELLO,
    )
    assert resp.status_code == 200
    assert resp.json()["candidates"][0]["content"]["parts"][0]["text"] == "Echo: hello world"
    record = fake.state.last()
    assert record is not None and (record.key, record.model) == ("sa-fake", "gemini-2.5-flash")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"aud": "https://oauth2.googleapis.com/token"}, "Failed audience check"),
        ({"scope": "https://www.googleapis.com/auth/userinfo.email"}, "Invalid scope"),
        ({"iss": "nobody@elsewhere.iam.gserviceaccount.com"}, "account not found"),
        ({"exp": 1_000}, "short-lived token"),
        ({"iat": 1_700_000_000 - 10, "exp": 1_700_000_000 + 7200}, "short-lived token"),
    ],
    ids=["audience", "scope", "issuer", "expired", "longer-than-an-hour"],
)
async def test_assertions_google_refuses_are_refused(
    http: httpx.AsyncClient,
    fake: FakeUpstream,
    clock: ManualClock,
    account: ServiceAccountKey,
    change: dict[str, Any],
    said: str,
) -> None:
    resp = await exchange(http, jwt(account, claims(fake, clock, **change)))

    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"
    assert said in resp.json()["error_description"]
    assert fake.state.google.exchanges == []


async def test_a_signature_of_another_key_is_refused(
    http: httpx.AsyncClient, fake: FakeUpstream, clock: ManualClock, account: ServiceAccountKey
) -> None:
    impostor = service_account("sa-impostor")
    forged = jwt(impostor, claims(fake, clock), kid=account.key_id)

    resp = await exchange(http, forged)

    assert (resp.status_code, resp.json()["error_description"]) == (400, "Invalid JWT Signature.")


async def test_a_token_stops_working_when_it_expires_on_the_clock(
    http: httpx.AsyncClient, fake: FakeUpstream, clock: ManualClock, account: ServiceAccountKey
) -> None:
    token = (await exchange(http, jwt(account, claims(fake, clock)))).json()["access_token"]
    url = f"{MODELS}/google/models/gemini-2.5-flash:generateContent"
    headers = {"Authorization": f"Bearer {token}"}

    clock.advance(3599)
    assert (await http.post(url, headers=headers, json=HELLO)).status_code == 200
    clock.advance(1)
    resp = await http.post(url, headers=headers, json=HELLO)

    assert resp.status_code == 401
    assert resp.json()["error"]["status"] == "UNAUTHENTICATED"


async def test_a_request_without_a_bearer_token_is_unauthenticated(http: httpx.AsyncClient) -> None:
    resp = await http.post(f"{MODELS}/google/models/gemini-2.5-flash:generateContent", json=HELLO)

    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == 401


@pytest.mark.parametrize(
    ("status", "grpc_status"),
    [(429, "RESOURCE_EXHAUSTED"), (403, "PERMISSION_DENIED"), (404, "NOT_FOUND")],
)
async def test_failures_are_google_rpc_statuses(
    http: httpx.AsyncClient, fake: FakeUpstream, status: int, grpc_status: str
) -> None:
    fake.state.set_scenario(Scenario.server_error(status))

    resp = await http.post(
        f"{MODELS}/google/models/gemini-2.5-flash:generateContent",
        headers={"Authorization": "Bearer ya29.from-gcloud"},
        json=HELLO,
    )

    assert resp.status_code == status
    error = resp.json()["error"]
    assert (error["code"], error["status"]) == (status, grpc_status)
    assert "details" not in error  # Vertex's 429 names no quota, unlike the Gemini API's


async def test_claude_raw_predict_wants_vertex_s_version_and_no_model(
    http: httpx.AsyncClient,
) -> None:
    url = f"{MODELS}/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    headers = {"Authorization": "Bearer ya29.from-gcloud"}
    body = {"max_tokens": 50, "messages": [{"role": "user", "content": "hello world"}]}

    refused = await http.post(
        url, headers=headers, json={**body, "anthropic_version": "2023-06-01"}
    )
    with_model = await http.post(
        url, headers=headers, json={**body, "anthropic_version": "vertex-2023-10-16", "model": "x"}
    )
    answered = await http.post(
        url, headers=headers, json={**body, "anthropic_version": "vertex-2023-10-16"}
    )

    assert (refused.status_code, with_model.status_code) == (400, 400)
    assert answered.status_code == 200
    assert answered.json()["content"][0]["text"] == "Echo: hello world"


async def test_embeddings_by_predict(http: httpx.AsyncClient) -> None:
    resp = await http.post(
        f"{MODELS}/google/models/text-embedding-005:predict",
        headers={"Authorization": "Bearer ya29.from-gcloud"},
        json={
            "instances": [{"content": "alpha"}, {"content": "beta gamma"}],
            "parameters": {"outputDimensionality": 4},
        },
    )

    predictions = resp.json()["predictions"]
    assert [len(p["embeddings"]["values"]) for p in predictions] == [4, 4]
    assert [p["embeddings"]["statistics"]["token_count"] for p in predictions] == [1, 2]
