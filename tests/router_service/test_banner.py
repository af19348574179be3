"""`switchboard dev`'s banner and `check-config`'s summary: the addresses they print are the
edge's as a URL or a host:port takes them (an IPv6 host bracketed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from router_service._serving import print_banner
from router_service.cli import main
from router_service.config import load_config
from tests.readme.markdown import ROOT


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("::", "http://[::]:8080/v1"),
        ("[::1]", "http://[::1]:8080/v1"),
        ("127.0.0.1", "http://127.0.0.1:8080/v1"),
    ],
)
def test_the_banner_writes_an_ipv6_edge_host_as_a_url_takes_it(
    host: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edge.host: "::"` (taken since the edge listens on a bare IPv6 host) printed
    `http://:::8080/v1`, which neither curl nor the openai SDK can read."""
    config = load_config(ROOT / "examples/dev.yaml", env={})
    print_banner(host, 8080, "127.0.0.1:50051", config)
    banner = capsys.readouterr().out
    assert f"curl -s {url}/chat/completions" in banner
    assert f"base_url='{url}'" in banner


def test_check_config_names_an_ipv6_edge_host_bracketed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text('edge: {host: "::1", port: 8080, router_target: "127.0.0.1:50051"}\n')
    assert main(["check-config", "--role", "edge", str(config)]) == 0
    out = capsys.readouterr().out
    assert "the edge on [::1]:8080, router 127.0.0.1:50051" in out, out
