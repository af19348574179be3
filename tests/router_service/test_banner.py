"""`switchboard dev`'s banner: the commands it prints reach the edge where it listens."""

from __future__ import annotations

import pytest

from router_service._serving import print_banner
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
