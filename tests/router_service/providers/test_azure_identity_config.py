"""Kind `azure`'s managed and workload identity keys and settings at load: a misspelt or broken
identity refused by its path, never quoted; the identity endpoint and header (App Service's
variables through `${…}`), the header among the secrets and no identity's name among them; and
the token requests each identity makes on the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest

from router_service.cli import main
from router_service.clock import ManualClock
from router_service.config import ProviderConfig, parse_config
from router_service.config._secrets import literal_secrets
from router_service.providers._entra_auth import entra_tokens
from tests.entra_keys import TENANT, client_id_of

ENDPOINT = "https://contoso.openai.azure.com"
USER_ASSIGNED = client_id_of("mi-user")
IMDS = "http://169.254.169.254/metadata/identity/oauth2/token"


def workload_json(token_file: Path, **changes: Any) -> str:
    fields = {
        "tenant_id": TENANT,
        "client_id": client_id_of("wi"),
        "federated_token_file": str(token_file),
        **changes,
    }
    return orjson.dumps(fields).decode()


def config_file(directory: Path, key: str, **provider: Any) -> Path:
    path = directory / "switchboard.yaml"
    config = {
        "providers": {"az": {"kind": "azure", "base_url": ENDPOINT, "keys": [key], **provider}},
        "models": {"chat": {"deployments": [{"provider": "az", "model": "gpt-4o"}]}},
        "auth": {"open": True},
    }
    path.write_text(orjson.dumps(config).decode())
    path.chmod(0o600)
    return path


def azure(**provider: Any) -> ProviderConfig:
    return ProviderConfig.model_validate({"kind": "azure", "base_url": ENDPOINT, **provider})


BROKEN = {
    "not-a-guid": ("managed-identity:my-identity", "its client id a GUID"),
    "underscore": ("managed_identity", "a managed identity is written `managed-identity`"),
    "capitals": ("Managed-Identity", "a managed identity is written `managed-identity`"),
    "workload-word": ("workload-identity", '"federated_token_file": "${AZURE_FEDERATED_'),
    "secret-and-file": (
        "WORKLOAD:client_secret=Xy8Q~s3cr3t",
        "has both client_secret and federated_token_file",
    ),
    "relative-file": ("WORKLOAD:federated_token_file=token", "is not an absolute path"),
    "no-file": ("WORKLOAD:federated_token_file=/nonexistent/token", "cannot read the federated"),
    "empty-file": ("WORKLOAD:empty", "is empty"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_identity_is_refused_by_its_path_never_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    key, problem = BROKEN[case]
    token = tmp_path / "token"
    token.write_text("" if key == "WORKLOAD:empty" else "eyJ.federated")
    if key.startswith("WORKLOAD:"):
        field, _, value = key.removeprefix("WORKLOAD:").partition("=")
        key = workload_json(token, **({field: value} if value else {}))

    assert main(["check-config", str(config_file(tmp_path, key))]) != 0

    out = capsys.readouterr()
    text = out.err + out.out
    assert "providers.az.keys[0].key" in text
    assert problem in text
    assert "s3cr3t" not in text and "eyJ.federated" not in text


def test_an_identity_header_needs_app_service_s_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, "managed-identity", identity_header="h-1234")

    assert main(["check-config", str(path)]) != 0

    text = capsys.readouterr().err
    assert "providers.az.identity_endpoint" in text and "h-1234" not in text
    with pytest.raises(ValueError, match="identity_endpoint must start with http"):
        azure(keys=["managed-identity"], identity_endpoint="localhost:4141/msi/token")


@pytest.mark.parametrize(
    ("env", "endpoint", "header"),
    [
        ({}, IMDS, None),
        (
            {"IDENTITY_ENDPOINT": "http://localhost:42356/msi/token", "IDENTITY_HEADER": "h-9"},
            "http://localhost:42356/msi/token",
            "h-9",
        ),
    ],
    ids=["vm", "app-service"],
)
def test_app_service_s_variables_through_the_config_loader(
    env: dict[str, str], endpoint: str, header: str | None
) -> None:
    text = """
providers:
  az:
    kind: azure
    base_url: https://contoso.openai.azure.com
    identity_endpoint: ${IDENTITY_ENDPOINT:-http://169.254.169.254/metadata/identity/oauth2/token}
    identity_header: ${IDENTITY_HEADER:-}
    keys: [managed-identity]
models: {chat: {deployments: [{provider: az, model: gpt-4o}]}}
auth: {open: true}
"""
    provider = parse_config(text, env=env).providers["az"]

    assert provider.identity_endpoint == endpoint
    found = provider.identity_header
    assert (found.get_secret_value() if found is not None else None) == header


def test_the_identity_header_is_a_secret_and_an_identity_s_name_is_not() -> None:
    provider = azure(
        keys=["managed-identity", f"managed-identity:{USER_ASSIGNED}", "api-key-1"],
        identity_endpoint="http://localhost:42356/msi/token",
        identity_header="h-identity-9f1c",
    )

    assert provider.secrets() == ["api-key-1", "h-identity-9f1c"]
    raw = {
        "providers": {
            "az": {
                "kind": "azure",
                "keys": ["managed-identity", workload_json(Path("/var/run/token"))],
                "identity_header": "h-identity-9f1c",
            }
        }
    }
    # A config file that names identities holds no secret; a literal header is one.
    assert literal_secrets(raw) == ["providers.az.identity_header"]


async def _requests(provider: ProviderConfig, key: str, answer: dict[str, Any]) -> httpx.Request:
    seen: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer)

    clock = ManualClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        tokens = entra_tokens(provider, http, clock)
        assert await tokens.bearer(key, 5.0) == "eyJ.tok"
        clock.advance(3000)  # within the lifetime, short of the refresh margin
        assert await tokens.bearer(key, 5.0) == "eyJ.tok"
    (request,) = seen
    return request


async def test_imds_request_on_the_wire_for_a_sovereign_cloud() -> None:
    provider = azure(
        keys=[f"managed-identity:{USER_ASSIGNED}"],
        entra_scope="https://cognitiveservices.azure.us/.default",
    )
    answer = {"access_token": "eyJ.tok", "expires_in": "3599", "token_type": "Bearer"}

    request = await _requests(provider, f"managed-identity:{USER_ASSIGNED}", answer)

    assert (request.method, f"{request.url.scheme}://{request.url.host}") == (
        "GET",
        "http://169.254.169.254",
    )
    assert request.url.path == "/metadata/identity/oauth2/token"
    assert parse_qs(request.url.query.decode()) == {
        "api-version": ["2018-02-01"],
        "resource": ["https://cognitiveservices.azure.us"],
        "client_id": [USER_ASSIGNED],
    }
    assert request.headers["Metadata"] == "true" and "X-IDENTITY-HEADER" not in request.headers


async def test_app_service_request_on_the_wire_and_its_expires_on() -> None:
    provider = azure(
        keys=["managed-identity"],
        identity_endpoint="http://localhost:42356/msi/token",
        identity_header="h-identity-9f1c",
    )
    expires_on = str(int(ManualClock().now()) + 3600)  # only when, as App Service says it
    answer = {"access_token": "eyJ.tok", "expires_on": expires_on, "token_type": "Bearer"}

    request = await _requests(provider, "managed-identity", answer)

    assert str(request.url).startswith("http://localhost:42356/msi/token?")
    assert parse_qs(request.url.query.decode()) == {
        "api-version": ["2019-08-01"],
        "resource": ["https://cognitiveservices.azure.com"],
    }
    assert request.headers["X-IDENTITY-HEADER"] == "h-identity-9f1c"
    assert "Metadata" not in request.headers


async def test_workload_identity_request_on_the_wire(tmp_path: Path) -> None:
    token = tmp_path / "azure-identity-token"
    token.write_text("eyJ.federated-token\n")
    key = workload_json(token)
    provider = azure(keys=[key], authority_host="https://login.microsoftonline.us/")
    answer = {"access_token": "eyJ.tok", "expires_in": 3599, "token_type": "Bearer"}

    request = await _requests(provider, key, answer)

    assert request.method == "POST"
    assert str(request.url) == f"https://login.microsoftonline.us/{TENANT}/oauth2/v2.0/token"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": [client_id_of("wi")],
        "client_assertion_type": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
        "client_assertion": ["eyJ.federated-token"],
        "scope": ["https://cognitiveservices.azure.com/.default"],
    }


async def test_app_service_2017_and_cloud_shell_requests_on_the_wire() -> None:
    legacy = azure(
        keys=[f"managed-identity:{USER_ASSIGNED}"],
        identity_endpoint="http://127.0.0.1:41741/msi/token",
        identity_header="s-2017",
        identity_protocol="app-service-2017",
    )
    when = datetime.fromtimestamp(ManualClock().now() + 3600, UTC)
    linux_date = when.strftime("%m/%d/%Y %H:%M:%S +00:00")  # Linux hosts' way, 24-hour
    answer = {"access_token": "eyJ.tok", "expires_on": linux_date, "token_type": "Bearer"}
    shell = azure(
        keys=["managed-identity"],
        identity_endpoint="http://localhost:50342/oauth2/token",
        identity_protocol="cloud-shell",
    )

    request = await _requests(legacy, f"managed-identity:{USER_ASSIGNED}", answer)
    posted = await _requests(shell, "managed-identity", {**answer, "expires_in": "3599"})

    assert parse_qs(request.url.query.decode()) == {
        "api-version": ["2017-09-01"],
        "resource": ["https://cognitiveservices.azure.com"],
        "clientid": [USER_ASSIGNED],
    }
    assert request.headers["secret"] == "s-2017" and "Metadata" not in request.headers
    assert (posted.method, str(posted.url)) == ("POST", "http://localhost:50342/oauth2/token")
    assert parse_qs(posted.content.decode()) == {
        "resource": ["https://cognitiveservices.azure.com"]
    }
    assert posted.headers["Metadata"] == "true"


@pytest.mark.parametrize(
    "header", ["h-SEKRIT\n-2", "h-SEKRIT\u2019x", "h-SEKRIT\u00a0x", "h-SEKRIT\r\nX-Evil: 1"]
)
def test_an_identity_header_no_http_request_can_carry_is_refused_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str
) -> None:
    # Sent as X-IDENTITY-HEADER (or `secret`) with each token request: a character no header
    # carries failed every call to the provider; refused by its path as a key is, never quoted.
    path = config_file(
        tmp_path,
        "managed-identity",
        identity_header=header,
        identity_endpoint="http://localhost:42356/msi/token",
    )

    assert main(["check-config", str(path)]) != 0

    text = capsys.readouterr().err
    assert "providers.az.identity_header" in text and "printable ASCII" in text
    assert "SEKRIT" not in text
