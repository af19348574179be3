"""Kind `azure`'s managed identities on the platforms beyond IMDS and App Service's 2019 API,
through a real router and the fake's endpoints: App Service's 2017 API (MSI_ENDPOINT and
MSI_SECRET, its `expires_on` a date), Cloud Shell (a POSTed form), Azure Arc (a 401 challenge
naming a key file, read only in the agent's directory), and a user-assigned identity named by
its object id or resource id; and each misfit of key and protocol refused at load by its
path."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.config import parse_config
from router_service.config._managed_identity import ManagedIdentity
from router_service.errors import ConfigError
from router_service.fake_upstream import FakeUpstream
from router_service.providers._managed_identity import IdentityEndpoint
from router_service.providers._oauth import REFRESH_MARGIN_S
from tests.conformance.helpers import chat, params
from tests.conftest import StartRouter
from tests.entra_keys import DEPLOYMENT, authorizations, azure_config, client_id_of

OK = routing_pb2.OUTCOME_OK
AUTH_INVALID = routing_pb2.OUTCOME_AUTH_INVALID
LIFETIME_S = 3600  # what the fake's tokens live
CLIENT_ID = client_id_of("mi-user")
OBJECT_ID = client_id_of("mi-user-object")
RESOURCE_ID = (
    "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/ai/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/router-mi"
)


@pytest.fixture
def host(fake: FakeUpstream) -> FakeUpstream:
    """The fake, its host given a system-assigned and a user-assigned identity (by its three
    ids)."""
    identities = fake.state.managed_identities
    identities.assign(None, "mi-system")
    identities.assign(CLIENT_ID, "mi-user", object_id=OBJECT_ID, resource_id=RESOURCE_ID)
    return fake


def platform(fake: FakeUpstream, protocol: str) -> dict[str, str]:
    """The provider's identity settings on a platform, the fake its endpoint."""
    header = fake.state.managed_identities.identity_header
    return {
        "imds": {},
        "app-service": {"identity_endpoint": f"{fake.url}/msi/token", "identity_header": header},
        "app-service-2017": {
            "identity_endpoint": f"{fake.url}/msi/token/2017",
            "identity_header": header,
            "identity_protocol": "app-service-2017",
        },
        "cloud-shell": {
            "identity_endpoint": f"{fake.url}/cloudshell/token",
            "identity_protocol": "cloud-shell",
        },
    }[protocol]


@pytest.mark.parametrize(
    ("protocol", "key", "label"),
    [
        ("imds", f"managed-identity:object_id={OBJECT_ID}", "mi-user"),
        ("imds", f"managed-identity:resource_id={RESOURCE_ID}", "mi-user"),
        ("app-service", f"managed-identity:object_id={OBJECT_ID}", "mi-user"),
        ("app-service", f"managed-identity:resource_id={RESOURCE_ID}", "mi-user"),
        ("app-service-2017", f"managed-identity:client_id={CLIENT_ID}", "mi-user"),
        ("cloud-shell", "managed-identity", "mi-system"),
    ],
    ids=["imds-object", "imds-resource", "as-object", "as-resource", "as-2017", "cloud-shell"],
)
async def test_each_platform_s_identity_gets_its_token_and_keeps_it(
    host: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    protocol: str,
    key: str,
    label: str,
) -> None:
    config = azure_config(host, [key], **platform(host, protocol))
    router = await start_router(config, clock=clock)

    first = await chat(router, params("gpt"))
    clock.advance(LIFETIME_S - REFRESH_MARGIN_S - 1)  # App Service 2017's date says it too
    await chat(router, params("gpt"))
    clock.advance(2)
    await chat(router, params("gpt"))  # too close to its expiry: exchanged again

    assert [a.outcome for a in first.route.attempts] == [OK]
    assert [r.key for r in host.state.calls(model=DEPLOYMENT)] == [label] * 3
    tokens = authorizations(host)
    assert tokens[0] == tokens[1] != tokens[2]
    who = "system-assigned" if label == "mi-system" else CLIENT_ID
    assert host.state.entra.exchanges == [who, who]
    assert host.state.entra.refusals == []


async def test_azure_arc_s_challenge_is_answered_from_its_key_file(
    host: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    host.state.managed_identities.arc_key_directory = tmp_path
    settings = {
        "identity_endpoint": f"{host.url}/arc/token",
        "identity_protocol": "azure-arc",
        "arc_key_directory": str(tmp_path),
    }
    router = await start_router(azure_config(host, ["managed-identity"], **settings), clock=clock)

    answers = [await chat(router, params("gpt")) for _ in range(2)]

    assert [[a.outcome for a in r.route.attempts] for r in answers] == [[OK], [OK]]
    assert host.state.entra.exchanges == ["system-assigned"]  # one challenge, one token
    assert [r.key for r in host.state.calls(model=DEPLOYMENT)] == ["mi-system"] * 2
    # Neither the key file's secret nor the token it got is in a log line or an answer.
    secret, (token,) = host.state.managed_identities.arc_secret, set(authorizations(host))
    text = f"{caplog.text} {answers}"
    assert secret is not None and secret not in text and token.removeprefix("Bearer ") not in text


async def test_an_arc_key_file_outside_the_agent_s_directory_is_not_read(
    host: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "agent").mkdir()
    host.state.managed_identities.arc_key_directory = tmp_path  # the endpoint names another
    settings = {
        "identity_endpoint": f"{host.url}/arc/token",
        "identity_protocol": "azure-arc",
        "arc_key_directory": str(tmp_path / "agent"),
    }
    config = azure_config(host, ["managed-identity"], **settings)
    router = await start_router(config, clock=clock)

    response = await chat(router, params("chain"))

    attempt = response.route.attempts[0]
    assert (attempt.outcome, response.route.attempts[1].outcome) == (AUTH_INVALID, OK)
    assert f"names a key file outside {tmp_path / 'agent'}: not read" in attempt.detail
    secret = host.state.managed_identities.arc_secret
    assert secret is not None and secret not in attempt.detail and secret not in caplog.text
    assert host.state.entra.exchanges == [] and host.state.count(model=DEPLOYMENT) == 0


MISFITS = {
    "wire-name": ("managed-identity:mi_res_id=" + RESOURCE_ID, {}, "written `managed-identity:"),
    "object-not-guid": ("managed-identity:object_id=router-mi", {}, "is a GUID (the identity's"),
    "not-a-resource-id": (
        "managed-identity:resource_id=/subscriptions/x/router-mi",
        {},
        "resource_id is not /subscriptions/<subscription>/resourceGroups/",
    ),
    "unknown-selector": ("managed-identity:name=router-mi", {}, "`managed-identity:object_id="),
    "arc-user-assigned": (
        f"managed-identity:{CLIENT_ID}",
        {"identity_protocol": "azure-arc", "identity_endpoint": "http://localhost:40342/t"},
        "Azure Arc serves only the host's system-assigned identity",
    ),
    "2017-object-id": (
        f"managed-identity:object_id={OBJECT_ID}",
        {
            "identity_protocol": "app-service-2017",
            "identity_endpoint": "http://127.0.0.1:41741/msi/token",
            "identity_header": "s-1",
        },
        "names a user-assigned identity by its client id only",
    ),
}
SETTING_MISFITS = {
    "2017-no-secret": (
        {"identity_protocol": "app-service-2017", "identity_endpoint": "http://127.0.0.1:1/t"},
        "identity_header",
        "app-service-2017 needs identity_header (${MSI_SECRET})",
    ),
    "cloud-shell-no-endpoint": (
        {"identity_protocol": "cloud-shell"},
        "identity_endpoint",
        "cloud-shell needs identity_endpoint (${MSI_ENDPOINT})",
    ),
    "arc-with-header": (
        {
            "identity_protocol": "azure-arc",
            "identity_endpoint": "http://x/t",
            "identity_header": "s-1",
        },
        "identity_header",
        "azure-arc takes no identity_header",
    ),
}


def config_text(key: str, settings: dict[str, Any]) -> str:
    provider = {"kind": "azure", "base_url": "https://contoso.openai.azure.com", "keys": [key]}
    config = {
        "providers": {"az": {**provider, **settings}},
        "models": {"chat": {"deployments": [{"provider": "az", "model": "gpt-4o"}]}},
        "auth": {"open": True},
    }
    return orjson.dumps(config).decode()


@pytest.mark.parametrize("case", sorted(MISFITS))
def test_a_key_its_protocol_cannot_ask_for_is_refused_at_its_path(case: str) -> None:
    key, settings, problem = MISFITS[case]

    with pytest.raises(ConfigError) as refused:
        parse_config(config_text(key, settings), env={})

    assert "providers.az.keys[0].key" in str(refused.value)
    assert problem in str(refused.value)


@pytest.mark.parametrize("case", sorted(SETTING_MISFITS))
def test_a_protocol_without_its_settings_is_refused_at_the_setting(case: str) -> None:
    settings, field, problem = SETTING_MISFITS[case]

    with pytest.raises(ConfigError) as refused:
        parse_config(config_text("managed-identity", settings), env={})

    assert f"providers.az.{field}" in str(refused.value) and problem in str(refused.value)
    assert "s-1" not in str(refused.value)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("link.key", "names a key file outside"),  # a symlink in the directory, out of it
        ("token.txt", "is not a .key file: not read"),
        ("big.key", "is over 4096 bytes: not read"),
        ("", "has no `WWW-Authenticate: Basic realm=<key file>`"),
    ],
    ids=["symlink-out", "not-key", "too-big", "no-challenge"],
)
def test_an_arc_challenge_is_answered_only_from_a_small_key_file_in_its_directory(
    tmp_path: Path, name: str, problem: str
) -> None:
    agent, elsewhere = tmp_path / "agent", tmp_path / "elsewhere.key"
    agent.mkdir()
    elsewhere.write_text("s3cr3t-elsewhere")
    (agent / "link.key").symlink_to(elsewhere)
    (agent / "token.txt").write_text("s3cr3t-txt")
    (agent / "big.key").write_text("x" * 4097)
    provider = parse_config(
        config_text(
            "managed-identity",
            {
                "identity_protocol": "azure-arc",
                "identity_endpoint": "http://localhost:40342/metadata/identity/oauth2/token",
                "arc_key_directory": str(agent),
            },
        ),
        env={},
    ).providers["az"]
    endpoint = IdentityEndpoint(provider)
    refused = endpoint.request(ManagedIdentity(), {"connect": 1.0})
    headers = {"WWW-Authenticate": f"Basic realm={agent / name}"} if name else {}

    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        endpoint.challenged(refused, httpx.Response(401, headers=headers))

    assert "s3cr3t" not in str(caught.value)
