"""A model group's deployments and the routing statistics' settings, refused at load when they
cannot mean what they say (check-config, the router's start, a reload: the last keeps the
config it serves)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from router_service.cli import main
from router_service.fake_upstream import FakeUpstream
from router_service.server import reload_from
from tests.conftest import RouterHandle, base_config
from tests.router_service.config.test_errors import BASE

TWICE = BASE.replace(
    "deployments: [{provider: alpha, model: small-fast}]",
    "deployments:\n"
    "      - {provider: alpha, model: small-fast}\n"
    "      - {provider: alpha, model: other}\n"
    "      - {provider: alpha, model: small-fast, weight: 3}",
)


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    path.chmod(0o600)
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "sk-alpha" not in err
    return err.replace(str(tmp_path) + "/", "")


def test_a_deployment_listed_twice_in_one_group_is_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was accepted (check-config said OK): the group tried it twice in a row, and under
    `weighted` it drew two entries' share (its weights added up)."""
    err = _check(tmp_path, TWICE, capsys)
    assert (
        "c.yaml:11: models.chat.deployments[2]: Value error, alpha/small-fast is listed twice "
        "in models.chat (deployments[0] too): list it once" in err
    )


@pytest.mark.parametrize("width", ["0.5", "0.001"])
def test_a_statistics_bucket_under_a_second_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], width: str
) -> None:
    """Buckets are named by their start second: two under a second wide took one name, their
    results merged and aged as the first's."""
    err = _check(tmp_path, BASE + f"routing: {{bucket_s: {width}}}\n", capsys)
    assert "c.yaml:10: routing.bucket_s: Input should be greater than or equal to 1" in err


async def test_a_reload_to_a_group_listing_a_deployment_twice_keeps_the_config(
    fake: FakeUpstream, router: RouterHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = base_config(fake.base_url)
    config["models"]["chain"]["deployments"].append({"provider": "alpha", "model": "model-a"})
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(config))

    assert not await reload_from(router.server, path)

    assert "models.chain.deployments[2]: Value error, alpha/model-a is listed twice" in caplog.text
    assert "still serving the previous config" in caplog.text
    assert "Traceback" not in caplog.text
    assert router.runtime.config.models["chain"].deployments[1].name == "beta/model-b"
