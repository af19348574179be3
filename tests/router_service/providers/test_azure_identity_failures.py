"""Kind `azure` with managed and workload identities that cannot get a token, through a real
router: an identity endpoint that does not answer, refuses the identity or the header, a
federated token file that is gone or not trusted — each the key's AUTH_INVALID (the next key or
deployment answers; nothing is sent to Azure without a token; no deployment is cooled for it);
a token Azure refuses is dropped, so the probe gets a new one; and neither a token, a federated
assertion nor the identity header is ever in a log line or an error."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import openai
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from router_service.outcomes import Outcome
from router_service.providers import AzureEntraAdapter
from tests.conformance.helpers import chat, params
from tests.conftest import StartRouter
from tests.entra_keys import (
    DEPLOYMENT,
    TENANT,
    WorkloadIdentityKey,
    authorizations,
    azure_config,
    client_id_of,
)
from tests.helpers import free_port
from tests.http_edge.harness import Edge

OK = routing_pb2.OUTCOME_OK
AUTH_INVALID = routing_pb2.OUTCOME_AUTH_INVALID
FAILURES = {
    "imds-unreachable": "the identity endpoint http://127.0.0.1:",
    "identity-not-found": "invalid_request: Identity not found",
    "wrong-identity-header": "HTTP 403: The X-IDENTITY-HEADER header is missing or not valid.",
    "token-file-gone": "cannot read the federated token file",
    "assertion-not-trusted": "invalid_client: AADSTS70021: No matching federated identity",
}


def failing(fake: FakeUpstream, failure: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """The key and provider settings of an identity that fails as `failure` says."""
    identities = fake.state.managed_identities
    if failure == "imds-unreachable":
        endpoint = f"http://127.0.0.1:{free_port()}/metadata/identity/oauth2/token"
        return "managed-identity", {"identity_endpoint": endpoint}
    if failure == "identity-not-found":  # the host has no such identity
        return f"managed-identity:{client_id_of('mi-user')}", {}
    if failure == "wrong-identity-header":
        identities.assign(None, "mi-system")
        return "managed-identity", {
            "identity_endpoint": f"{fake.url}/msi/token",
            "identity_header": "not-the-platform-s-header",
        }
    workload = WorkloadIdentityKey("wi-1", client_id_of("wi-1"), tmp_path / "token")
    workload.rotate(fake, "eyJ.federated-1")
    if failure == "assertion-not-trusted":  # the federation trusts another issuer's token
        fake.state.entra.register_federated(TENANT, workload.client_id, "eyJ.other", "wi-1")
    return workload.key_json(), {}


@pytest.mark.parametrize("failure", sorted(FAILURES))
async def test_an_identity_without_a_token_is_the_key_s_auth_invalid(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    tmp_path: Path,
    failure: str,
) -> None:
    key, settings = failing(fake, failure, tmp_path)
    router = await start_router(azure_config(fake, [key], **settings), clock=clock)
    if failure == "token-file-gone":
        (tmp_path / "token").unlink()  # readable at load, gone at the exchange

    response = await chat(router, params("chain"))

    attempts = [(a.deployment, a.outcome) for a in response.route.attempts]
    assert attempts == [(f"az/{DEPLOYMENT}", AUTH_INVALID), ("backup/m-backup", OK)]
    assert response.route.attempts[0].key_fingerprint == fingerprint(key)
    assert FAILURES[failure] in response.route.attempts[0].detail
    assert fake.state.count(model=DEPLOYMENT) == 0  # nothing went to Azure without a token


async def test_an_unreachable_identity_endpoint_sets_the_key_aside_not_the_deployment(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/metadata/identity/oauth2/token"
    keys = ["managed-identity", "plain-api-key"]
    router = await start_router(azure_config(fake, keys, identity_endpoint=endpoint), clock=clock)

    answers = [await chat(router, params("gpt")) for _ in range(2)]

    identity, plain = fingerprint(keys[0]), fingerprint(keys[1])
    outcomes = [[(a.key_fingerprint, a.outcome) for a in r.route.attempts] for r in answers]
    # The deployment's other key answers at once; the identity is disabled, not tried again.
    assert outcomes == [[(identity, AUTH_INVALID), (plain, OK)], [(plain, OK)]]
    assert {r.key for r in fake.state.calls()} == {"plain-api-key"}


async def test_a_token_azure_refuses_is_dropped_so_the_probe_gets_a_new_one(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    fake.state.managed_identities.assign(None, "mi-system")
    router = await start_router(azure_config(fake, ["managed-identity"]), clock=clock)
    await chat(router, params("gpt"))
    fake.state.entra.revoke_all()
    adapter = router.runtime.adapters["az"]
    assert isinstance(adapter, AzureEntraAdapter)

    with pytest.raises(UpstreamFailure) as caught:
        await adapter.list_models("managed-identity", 5.0)
    assert caught.value.outcome is Outcome.AUTH_INVALID
    assert await adapter.list_models("managed-identity", 5.0) == fake.state.models

    assert fake.state.entra.exchanges == ["system-assigned", "system-assigned"]


async def test_no_token_assertion_or_identity_header_in_logs_or_errors(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    identities = fake.state.managed_identities
    identities.assign(None, "mi-system")
    workload = WorkloadIdentityKey("wi-1", client_id_of("wi-1"), tmp_path / "token")
    workload.rotate(fake, "eyJ.federated-assertion-1")
    header = identities.identity_header
    config = azure_config(
        fake,
        ["managed-identity", workload.key_json()],
        identity_endpoint=f"{fake.url}/msi/token",
        identity_header=header,
    )
    router = await start_router(config, clock=clock)
    answers = [await chat(router, params("gpt")) for _ in range(2)]  # a token for each
    fake.state.entra.revoke_all()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("gpt"))  # each refused by Azure, then each set aside

    assert all(r.route.attempts[-1].outcome == OK for r in answers)
    details = details_from_rpc_error(caught.value)
    assert (caught.value.code(), details.reason) == (grpc.StatusCode.UNAVAILABLE, "AUTH_INVALID")
    text = f"{caught.value.details()} {details.message} {details.upstream_error} {caplog.text}"
    issued = [*fake.state.entra.issued, *(a.removeprefix("Bearer ") for a in authorizations(fake))]
    assert issued and all(token not in text for token in issued)
    assert "eyJ.federated-assertion-1" not in text and header not in text


async def test_what_callers_hear_when_no_identity_gets_a_token(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    clock: ManualClock,
) -> None:
    key = f"managed-identity:{client_id_of('mi-user')}"  # the host has no such identity
    grpc_router = await start_router(azure_config(fake, [key]), clock=clock)
    edge = await start_edge(await start_router(azure_config(fake, [key]), clock=clock))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(grpc_router, params("gpt"))
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        with pytest.raises(openai.APIStatusError) as refused:
            await sdk.chat.completions.create(
                model="gpt", messages=[{"role": "user", "content": "hello there"}]
            )

    details = details_from_rpc_error(caught.value)
    assert (caught.value.code(), details.reason) == (grpc.StatusCode.UNAVAILABLE, "AUTH_INVALID")
    detail = f"token exchange of managed identity {client_id_of('mi-user')} refused: "
    assert detail + "invalid_request: Identity not found" in details.message
    assert refused.value.status_code == 503
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "auth_invalid"
    assert detail + "invalid_request: Identity not found" in body["message"]
    assert len(fake.state.entra.refusals) == 2 and fake.state.count(model=DEPLOYMENT) == 0
