"""The world-readable-file warning covers every setting that holds a secret."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.config import load_config
from router_service.config._secrets import literal_secrets
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.router_service.server.processes import params

PROVIDERS = "providers:\n  p: {base_url: 'http://x/v1', keys: ['${K:-d}']}\nauth: {open: true}\n"


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ("edge: {admin_router_key: literal-admin-key}\n", ["edge.admin_router_key"]),
        ("edge: {admin_token: literal-token}\n", ["edge.admin_token"]),
        ("edge: {admin_router_key: '${ADMIN_KEY:-x}'}\n", []),
        (
            "state: {backend: redis, url: 'redis://:LiteralRedisPassword@127.0.0.1:6379/0'}\n",
            ["state.url"],
        ),
        ("state: {backend: redis, url: 'rediss://user:pw@h:6379/0'}\n", ["state.url"]),
        ("state: {backend: redis, url: 'redis://:${REDIS_PW:-x}@h:6379/0'}\n", []),
        ("state: {backend: redis, url: 'redis://h:6379/0'}\n", []),
        ("state: {backend: redis, url: '${REDIS_URL:-redis://h}'}\n", []),
    ],
)
def test_literal_secrets_outside_keys(body: str, found: list[str]) -> None:
    import yaml

    assert literal_secrets(yaml.safe_load(PROVIDERS + body)) == found


def test_credential_headers_count_as_secrets() -> None:
    data = {
        "providers": {
            "p": {
                "keys": ["${K}"],
                "headers": {
                    "cf-aig-authorization": "Bearer lit",
                    "x-goog-api-key": "lit",
                    "X-Auth-Token": "${T}",
                    "OpenAI-Organization": "org-1",
                },
            }
        }
    }
    assert literal_secrets(data) == [
        "providers.p.headers.cf-aig-authorization",
        "providers.p.headers.x-goog-api-key",
    ]


def test_readable_file_warns_of_them_without_their_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        PROVIDERS + "edge: {admin_router_key: literal-admin-key}\n"
        "state: {backend: redis, url: 'redis://:LiteralRedisPassword@127.0.0.1:6379/0'}\n"
    )
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="switchboard.config"):
        load_config(path, env={})
    [record] = [r for r in caplog.records if r.name == "switchboard.config"]
    message = record.getMessage()
    assert "(edge.admin_router_key, state.url)" in message
    assert "literal-admin-key" not in message and "LiteralRedisPassword" not in message


@pytest.mark.parametrize(
    ("url", "masked"),
    [("redis://:s3cret-pw@cache.internal:6379/0", ["s3cret-pw"]), ("redis://cache:6379/0", [])],
)
def test_the_log_masks_a_redis_password_not_the_address(url: str, masked: list[str]) -> None:
    """An operator reads which Redis a replica uses in its log; only a password is a secret."""
    from router_service.config import parse_config
    from router_service.telemetry import config_secrets

    config = parse_config(PROVIDERS + f"state: {{backend: redis, url: '{url}'}}\n")
    assert config_secrets(config) == ["d", *masked]  # the provider's key, then the state's


async def test_a_key_that_ends_with_a_line_break_reaches_the_upstream_without_it(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Sent with it, the header broke the request: every call failed, as the caller's own 400,
    with the upstream's complaint quoting the header, key and all."""
    config = base_config(fake.base_url)
    config["providers"]["alpha"]["keys"] = ["sk-alpha-1\n"]
    router = await start_router(config)
    answer = await router.stub.Chat(pb.ChatRequest(params=params("chain")))
    assert answer.route.provider == "alpha"
    assert [call.key for call in fake.state.calls()] == ["sk-alpha-1"]


async def test_a_header_value_that_ends_with_a_line_break_is_sent_without_it(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """`headers: {cf-aig-authorization: "Bearer ${CF_AIG_TOKEN}"}`, the variable from a file."""
    config = base_config(fake.base_url)
    config["providers"]["alpha"]["headers"] = {"x-gateway-token": "Bearer gw-token-1\n"}
    router = await start_router(config)
    await router.stub.Chat(pb.ChatRequest(params=params("chain")))
    assert [call.headers.get("x-gateway-token") for call in fake.state.calls()] == [
        "Bearer gw-token-1"
    ]
