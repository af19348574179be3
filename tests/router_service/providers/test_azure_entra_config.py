"""Kind `azure`'s Entra ID settings and keys at load: a service principal key given inline or as
a file (beside the config), refused by its path when it is broken and never quoted, its client
secret among the secrets the log redactor masks; the token request it makes on the wire."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pydantic
import pytest

from router_service.cli import main
from router_service.clock import ManualClock
from router_service.config import ProviderConfig
from router_service.config._secrets import literal_secrets
from router_service.config._vertex import parse_vertex_key
from router_service.providers._entra_auth import entra_tokens
from tests.entra_keys import service_principal

ENDPOINT = "https://contoso.openai.azure.com"
PRINCIPAL = service_principal("cfg")


def sp_json(**changes: Any) -> str:
    return orjson.dumps({**orjson.loads(PRINCIPAL.key_json()), **changes}).decode()


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


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ('{"tenant_id": "t", "client_id": ', "not valid JSON"),
        ("{}", "has no tenant_id"),
        (sp_json(client_secret=""), "has no client_secret"),
        (sp_json(tenant_id=None), "has no tenant_id"),
        (sp_json(clientSecret="x"), "fields it does not take: ['clientSecret']"),
        (sp_json(tenant_id="../common"), "tenant_id is not a tenant id or domain"),
        ("file:/nonexistent/principal.json", "cannot read the service principal file"),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "no-secret",
        "no-tenant",
        "unknown-field",
        "bad-tenant",
        "no-file",
    ],
)
def test_a_broken_principal_is_refused_by_its_path_never_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, problem: str
) -> None:
    path = config_file(tmp_path, key)

    assert main(["check-config", str(path)]) != 0

    out = capsys.readouterr()
    text = out.err + out.out
    assert "providers.az.keys[0].key" in text
    assert problem in text
    assert PRINCIPAL.client_secret not in text


def test_a_principal_file_is_read_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "principal.json").write_text(PRINCIPAL.key_json())
    path = config_file(tmp_path, "file:principal.json")

    assert main(["check-config", str(path)]) == 0
    provider = ProviderConfig.model_validate(
        {"kind": "azure", "base_url": ENDPOINT, "keys": ["file:principal.json"]},
        context={"base_dir": str(tmp_path)},
    )
    assert provider.keys[0].key.get_secret_value() == f"file:{tmp_path / 'principal.json'}"
    # The secret read from the file is masked in logs as the configured keys are.
    assert PRINCIPAL.client_secret in provider.secrets()
    # Where the key is, not the key: no warning that the config file holds secrets.
    assert literal_secrets({"providers": {"az": {"kind": "azure", "keys": ["file:p.json"]}}}) == []


def test_an_inline_principal_s_secret_is_among_the_provider_s_secrets() -> None:
    provider = ProviderConfig.model_validate(
        {"kind": "azure", "base_url": ENDPOINT, "keys": [PRINCIPAL.key_json(), "api-key-1"]}
    )

    assert provider.secrets() == [PRINCIPAL.key_json(), "api-key-1", PRINCIPAL.client_secret]
    assert provider.authority_host == "https://login.microsoftonline.com"
    assert provider.entra_scope == "https://cognitiveservices.azure.com/.default"


def test_authority_host_is_an_http_url() -> None:
    with pytest.raises(pydantic.ValidationError, match="authority_host must start with http"):
        ProviderConfig.model_validate(
            {"kind": "azure", "base_url": ENDPOINT, "keys": ["k"], "authority_host": "login"}
        )


def test_a_principal_is_no_vertex_key_shape_shared_by_accident() -> None:
    # The file and inline shapes are the vertex keys' (one reader), but what the JSON must hold
    # is each kind's own: a principal is no service account key.
    with pytest.raises(ValueError, match="not a service account key"):
        parse_vertex_key(PRINCIPAL.key_json())


async def test_the_token_request_on_the_wire() -> None:
    seen: list[httpx.Request] = []

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ.tok"}
        )

    provider = ProviderConfig.model_validate(
        {
            "kind": "azure",
            "base_url": ENDPOINT,
            "keys": [PRINCIPAL.key_json()],
            "authority_host": "https://login.microsoftonline.us/",
            "entra_scope": "https://cognitiveservices.azure.us/.default",
        }
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(token_endpoint)) as http:
        tokens = entra_tokens(provider, http, ManualClock())
        assert await tokens.bearer(PRINCIPAL.key_json(), 5.0) == "eyJ.tok"

    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == (
        f"https://login.microsoftonline.us/{PRINCIPAL.tenant_id}/oauth2/v2.0/token"
    )
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": [PRINCIPAL.client_id],
        "client_secret": [PRINCIPAL.client_secret],
        "scope": ["https://cognitiveservices.azure.us/.default"],
    }


def _same_file_twice(directory: Path) -> tuple[str, str]:
    (directory / "keys").mkdir()
    (directory / "keys" / "principal.json").write_text(PRINCIPAL.key_json())
    return "file:keys/principal.json", "file:keys/../keys/principal.json"


def _linked(directory: Path) -> tuple[str, str]:
    (directory / "principal.json").write_text(PRINCIPAL.key_json())
    (directory / "linked.json").symlink_to(directory / "principal.json")
    return "file:principal.json", "file:linked.json"


def _copied(directory: Path) -> tuple[str, str]:
    (directory / "principal.json").write_text(PRINCIPAL.key_json())
    spaced = orjson.dumps(orjson.loads(PRINCIPAL.key_json()), option=orjson.OPT_INDENT_2)
    (directory / "copy.json").write_text(spaced.decode() + "\n")  # the same key, other text
    return "file:principal.json", "file:copy.json"


@pytest.mark.parametrize("listed", [_same_file_twice, _linked, _copied])
def test_two_key_files_holding_one_key_are_refused_by_their_paths_never_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], listed: Any
) -> None:
    """One credential is one set of slots and limits, whichever paths name it (the same file
    twice, a symlink, a copy): listed twice, the pool would show it twice and serve half what
    its entries say. The error names both files, never the key."""
    first, second = listed(tmp_path)
    path = config_file(tmp_path, first)
    config = orjson.loads(path.read_text())
    config["providers"]["az"]["keys"].append(second)
    path.write_text(orjson.dumps(config).decode())

    assert main(["check-config", str(path)]) != 0

    out = capsys.readouterr()
    text = out.err + out.out
    assert "providers.az.keys[1]: Value error, the same key as keys[0]" in text
    assert str(tmp_path / first.removeprefix("file:")) in text
    assert str(tmp_path / second.removeprefix("file:")) in text
    assert PRINCIPAL.client_secret not in text and PRINCIPAL.client_id not in text
