"""An upstream URL with credentials in it (`https://user:password@host`) is refused at load: the
router sends a provider's credentials as its keys and `headers:`, never as the URL's userinfo, so
such a URL's password would be neither sent as meant nor kept out of every place that shows a
URL. Each surface that reports a config problem says where, never the URL: `check-config`, a
reload's error (AdminService.GetServerInfo, the edge's status page) and the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.cli import main
from router_service.config import parse_config
from router_service.errors import ConfigError
from router_service.fake_upstream import FakeUpstream
from router_service.server import reload_from, reloading
from tests.conftest import StartRouter, base_config

pytestmark = pytest.mark.timeout(60)

PASSWORD = "Pw-SEKRIT-42"
CREDENTIALED = [
    f"https://svc-user:{PASSWORD}@llm.internal/v1",
    f"https://:{PASSWORD}@llm.internal/v1",
    f"https://{PASSWORD}@llm.internal/v1",  # a token written where the user goes
    f"https://svc-user:{PASSWORD}@llm.internal:8443",
]


def provider(field: str, url: str) -> str:
    """A config whose provider `p`'s `field` is `url` (an azure provider reads all three)."""
    extra = "" if field == "base_url" else f"\n    {field}: '{url}'"
    base_url = url if field == "base_url" else "https://res.openai.azure.com"
    return f"""
providers:
  p:
    kind: azure
    base_url: '{base_url}'{extra}
    keys: [sk-key-1]
models: {{m: {{deployments: [{{provider: p, model: m}}]}}}}
auth: {{open: true}}
"""


@pytest.mark.parametrize("url", CREDENTIALED)
@pytest.mark.parametrize("field", ["base_url", "identity_endpoint", "authority_host"])
def test_a_url_with_credentials_is_refused_by_its_path_never_quoted(field: str, url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(provider(field, url), source="c.yaml", env={})

    message = str(caught.value)
    assert f"providers.p.{field}" in message and "credentials" in message
    assert PASSWORD not in message and "svc-user" not in message


def test_check_config_says_where_never_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(provider("base_url", CREDENTIALED[0]))
    path.chmod(0o600)

    assert main(["check-config", str(path)]) != 0

    out = capsys.readouterr()
    assert "providers.p.base_url" in out.err
    assert PASSWORD not in out.err + out.out


async def test_a_reload_to_such_a_url_is_refused_and_said_without_it(
    fake: FakeUpstream,
    start_router: StartRouter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = base_config(fake.base_url)
    router = await start_router(config)
    path = tmp_path / "router.yaml"
    config["providers"]["alpha"]["base_url"] = fake.base_url.replace(
        "http://", f"http://svc-user:{PASSWORD}@"
    )
    path.write_text(yaml.safe_dump(config))

    with caplog.at_level(logging.DEBUG):
        async with reloading(router.server, path):
            assert not await reload_from(router.server, path)
            info = await router.admin.GetServerInfo(admin_pb.GetServerInfoRequest(), timeout=10)

    assert "providers.alpha.base_url" in info.reload_error
    assert "credentials" in info.reload_error
    assert PASSWORD not in info.reload_error
    assert PASSWORD not in caplog.text and "svc-user" not in caplog.text
    assert "providers.alpha.base_url" in caplog.text  # the failed reload is logged, by path
