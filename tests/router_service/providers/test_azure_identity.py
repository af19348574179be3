"""Kind `azure` with managed identities (IMDS; App Service's IDENTITY_ENDPOINT) and workload
identities (a federated token file), through a real router and the fake's identity endpoints
and Entra token endpoint: the upstream sees the identity's Bearer token, tokens are reused
within their lifetime and exchanged again before they expire (on a ManualClock), the
federated token file is read again at each exchange, and each way an identity fails is the
key's AUTH_INVALID."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.config import parse_config
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from router_service.providers._oauth import REFRESH_MARGIN_S
from tests.conformance.helpers import chat, params, stream, streamed_text
from tests.conftest import StartRouter
from tests.entra_keys import (
    DEPLOYMENT,
    TENANT,
    WorkloadIdentityKey,
    authorizations,
    azure_config,
    client_id_of,
    sdk_round_trip,
)
from tests.http_edge.harness import Edge

OK = routing_pb2.OUTCOME_OK
AUTH_INVALID = routing_pb2.OUTCOME_AUTH_INVALID
LIFETIME_S = 3600  # what the fake's tokens live
USER_ASSIGNED = client_id_of("mi-user")


def app_service(fake: FakeUpstream) -> dict[str, str]:
    """An azure provider's settings on App Service: the fake's IDENTITY_ENDPOINT and header."""
    header = fake.state.managed_identities.identity_header
    return {"identity_endpoint": f"{fake.url}/msi/token", "identity_header": header}


async def test_the_system_assigned_identity_s_token_from_imds_is_reused(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    fake.state.managed_identities.assign(None, "mi-system")
    router = await start_router(azure_config(fake, ["managed-identity"]), clock=clock)

    first = await chat(router, params("gpt"))
    events = await stream(router, params("gpt"))
    clock.advance(LIFETIME_S - REFRESH_MARGIN_S - 1)  # still good for longer than the margin
    await chat(router, params("gpt"))

    assert first.completion.choices[0].message.text == "Echo: hello there"
    assert streamed_text(events) == "Echo: hello there"
    assert fake.state.entra.exchanges == ["system-assigned"]
    tokens = authorizations(fake)
    assert len(tokens) == 3 and len(set(tokens)) == 1 and tokens[0].startswith("Bearer eyJ")
    assert all("api-key" not in r.headers for r in fake.state.calls())
    assert [r.key for r in fake.state.calls()] == ["mi-system"] * 3
    assert first.route.attempts[0].key_fingerprint == fingerprint("managed-identity")


async def test_a_user_assigned_identity_is_asked_for_by_client_id_and_refreshed(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    fake.state.managed_identities.assign(None, "mi-system")  # also on the host: not asked for
    fake.state.managed_identities.assign(USER_ASSIGNED, "mi-user")
    key = f"managed-identity:{USER_ASSIGNED}"
    router = await start_router(azure_config(fake, [key]), clock=clock)
    await chat(router, params("gpt"))

    clock.advance(LIFETIME_S - REFRESH_MARGIN_S + 1)  # alive, but not for long enough
    response = await chat(router, params("gpt"))

    assert [a.outcome for a in response.route.attempts] == [OK]
    assert fake.state.entra.exchanges == [USER_ASSIGNED, USER_ASSIGNED]
    first, second = authorizations(fake)
    assert first != second
    assert {r.key for r in fake.state.calls()} == {"mi-user"}
    assert response.route.attempts[0].key_fingerprint == fingerprint(key)


async def test_a_token_issued_for_less_than_twice_the_margin_is_kept_half_its_life(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    # An identity endpoint may hand out its own cached token with minutes left: exchanging it
    # again at every call (it is never "good for more than the margin") would double each call.
    fake.state.entra.token_lifetime_s = 240
    fake.state.managed_identities.assign(None, "mi-system")
    router = await start_router(azure_config(fake, ["managed-identity"]), clock=clock)

    await chat(router, params("gpt"))
    clock.advance(119)  # within the first half of its life
    await chat(router, params("gpt"))
    exchanged_once = list(fake.state.entra.exchanges)
    clock.advance(2)  # past it: exchanged again, before it expires
    response = await chat(router, params("gpt"))

    assert exchanged_once == ["system-assigned"]
    assert fake.state.entra.exchanges == ["system-assigned"] * 2
    assert [a.outcome for a in response.route.attempts] == [OK]
    first, second, third = authorizations(fake)
    assert first == second != third


async def test_two_identities_in_one_pool_have_their_own_tokens_and_fingerprints(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    fake.state.managed_identities.assign(None, "mi-system")
    fake.state.managed_identities.assign(USER_ASSIGNED, "mi-user")
    keys = ["managed-identity", f"managed-identity:{USER_ASSIGNED}"]
    router = await start_router(azure_config(fake, keys), clock=clock)

    answers = [await chat(router, params("gpt")) for _ in range(4)]  # round robin over both

    used = {a.route.attempts[0].key_fingerprint for a in answers}
    assert used == {fingerprint(keys[0]), fingerprint(keys[1])} and len(used) == 2
    assert sorted(fake.state.entra.exchanges) == sorted(["system-assigned", USER_ASSIGNED])
    assert {r.key for r in fake.state.calls()} == {"mi-system", "mi-user"}
    assert len(set(authorizations(fake))) == 2


async def test_app_service_s_identity_endpoint_and_its_expires_on(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    fake.state.managed_identities.assign(USER_ASSIGNED, "mi-user")
    keys = [f"managed-identity:{USER_ASSIGNED}"]
    router = await start_router(azure_config(fake, keys, **app_service(fake)), clock=clock)

    await chat(router, params("gpt"))
    clock.advance(LIFETIME_S - REFRESH_MARGIN_S - 1)
    await chat(router, params("gpt"))  # the same token: expires_on is far enough
    clock.advance(2)
    response = await chat(router, params("gpt"))  # a new one: expires_on is too close

    assert [a.outcome for a in response.route.attempts] == [OK]
    assert fake.state.entra.exchanges == [USER_ASSIGNED, USER_ASSIGNED]
    tokens = authorizations(fake)
    assert tokens[0] == tokens[1] != tokens[2]
    assert fake.state.entra.refusals == []


async def test_the_federated_token_file_is_read_again_at_each_exchange(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, tmp_path: Path
) -> None:
    identity = WorkloadIdentityKey("wi-1", client_id_of("wi-1"), tmp_path / "token")
    identity.rotate(fake, "eyJ.federated-1")
    router = await start_router(azure_config(fake, [identity.key_json()]), clock=clock)
    await chat(router, params("gpt"))
    clock.advance(LIFETIME_S - REFRESH_MARGIN_S - 1)
    identity.rotate(fake, "eyJ.federated-2")  # the kubelet's rotation: Entra trusts the new one
    await chat(router, params("gpt"))  # the cached token: no exchange

    clock.advance(2)
    response = await chat(router, params("gpt"))

    assert [a.outcome for a in response.route.attempts] == [OK]
    client_id = identity.client_id
    assert fake.state.entra.exchanges == [client_id, client_id]
    assert fake.state.entra.refusals == []  # the second exchange sent the rotated token
    tokens = authorizations(fake)
    assert tokens[0] == tokens[1] != tokens[2]
    assert {r.key for r in fake.state.calls()} == {"wi-1"}
    assert response.route.attempts[0].key_fingerprint == fingerprint(identity.key_json())


# The README's examples: the platform's variables read by the config loader, nowhere else.
PLATFORM_CONFIG = """
providers:
  az-app:
    kind: azure
    base_url: {base_url}
    identity_endpoint: ${{IDENTITY_ENDPOINT:-http://169.254.169.254/metadata/identity/oauth2/token}}
    identity_header: ${{IDENTITY_HEADER:-}}
    keys: ["managed-identity:${{MI_CLIENT_ID}}"]
  az-aks:
    kind: azure
    base_url: {base_url}
    authority_host: ${{AZURE_AUTHORITY_HOST:-https://login.microsoftonline.com}}
    keys:
      - '{{"tenant_id": "${{AZURE_TENANT_ID}}", "client_id": "${{AZURE_CLIENT_ID}}",
          "federated_token_file": "${{AZURE_FEDERATED_TOKEN_FILE}}"}}'
models:
  app: {{deployments: [{{provider: az-app, model: {deployment}}}]}}
  aks: {{deployments: [{{provider: az-aks, model: {deployment}}}]}}
auth: {{open: true}}
server: {{port: 0}}
"""


async def test_the_platform_s_variables_through_the_config_loader(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, tmp_path: Path
) -> None:
    fake.state.managed_identities.assign(USER_ASSIGNED, "mi-user")
    workload = WorkloadIdentityKey("wi-1", client_id_of("wi-1"), tmp_path / "azure-identity-token")
    workload.rotate(fake, "eyJ.federated-1")
    env = {
        # App Service / Container Apps / Functions set these two.
        "IDENTITY_ENDPOINT": f"{fake.url}/msi/token",
        "IDENTITY_HEADER": fake.state.managed_identities.identity_header,
        "MI_CLIENT_ID": USER_ASSIGNED,
        # AKS's workload identity webhook sets these four (the authority with its slash).
        "AZURE_AUTHORITY_HOST": f"{fake.url}/",
        "AZURE_TENANT_ID": TENANT,
        "AZURE_CLIENT_ID": workload.client_id,
        "AZURE_FEDERATED_TOKEN_FILE": str(workload.token_file),
    }
    text = PLATFORM_CONFIG.format(base_url=fake.url, deployment=DEPLOYMENT)
    router = await start_router(parse_config(text, env=env), clock=clock)

    on_app_service = await chat(router, params("app"))
    on_aks = await chat(router, params("aks"))

    assert [a.outcome for a in on_app_service.route.attempts] == [OK]
    assert [a.outcome for a in on_aks.route.attempts] == [OK]
    assert [r.key for r in fake.state.calls()] == ["mi-user", "wi-1"]
    assert fake.state.entra.exchanges == [USER_ASSIGNED, workload.client_id]


async def test_the_openai_sdk_through_the_edge(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    clock: ManualClock,
) -> None:
    fake.state.managed_identities.assign(None, "mi-system")
    router = await start_router(azure_config(fake, ["managed-identity"]), clock=clock)
    edge = await start_edge(router)

    await sdk_round_trip(edge.base_url)
    assert fake.state.entra.exchanges == ["system-assigned"]
    tokens = authorizations(fake)
    assert len(tokens) == 3 and all(h.startswith("Bearer eyJ") for h in tokens)


async def test_an_identity_header_read_with_its_file_s_newline_gets_a_token(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    # `IDENTITY_HEADER` from a mounted secret file ends with a newline: trimmed at load, as every
    # other secret is (sent as it was, no token request could carry it: every call failed).
    fake.state.managed_identities.assign(None, "mi-system")
    header = fake.state.managed_identities.identity_header + "\n"
    settings = {**app_service(fake), "identity_header": header}
    router = await start_router(azure_config(fake, ["managed-identity"], **settings), clock=clock)

    response = await chat(router, params("gpt"))

    assert [a.outcome for a in response.route.attempts] == [OK]
    assert fake.state.entra.exchanges == ["system-assigned"]
