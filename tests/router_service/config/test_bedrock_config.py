"""A bedrock provider's config: a region to sign for, keys of one of the two shapes, each
refusal pointing at its line without quoting the key; `check-config` on the example file."""

from __future__ import annotations

from pathlib import Path

import pytest

from router_service.cli import main
from router_service.config import ProviderConfig, parse_config
from router_service.config._aws import region_of
from router_service.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "examples" / "bedrock.yaml"
TEMPLATE = """
providers:
  aws:
    kind: bedrock
    base_url: {base_url}
{region}    keys:
      - "{key}"
models:
  chat:
    deployments: [{{provider: aws, model: "us.amazon.nova-lite-v1:0"}}]
auth: {{open: true}}
"""
RUNTIME = "https://bedrock-runtime.us-west-2.amazonaws.com"


def config_text(key: str, base_url: str = RUNTIME, region: str | None = None) -> str:
    line = f"    region: {region}\n" if region else ""
    return TEMPLATE.format(base_url=base_url, region=line, key=key)


def error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml", env={})
    return str(caught.value)


@pytest.mark.parametrize(
    ("base_url", "region"),
    [
        ("https://bedrock-runtime.us-east-1.amazonaws.com", "us-east-1"),
        ("https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("https://vpce-0a1b2c.bedrock-runtime.eu-west-1.vpce.amazonaws.com", "eu-west-1"),
        ("https://bedrock-runtime.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("https://bedrock.ap-southeast-2.amazonaws.com", "ap-southeast-2"),
        ("http://127.0.0.1:9100", None),
        ("https://bedrock-proxy.internal", None),
    ],
)
def test_the_region_is_read_from_the_endpoint(base_url: str, region: str | None) -> None:
    assert region_of(base_url) == region


def test_a_region_is_needed_when_the_endpoint_names_none() -> None:
    assert error(config_text("api-key", "https://bedrock-proxy.internal")) == (
        "c.yaml:3: providers.aws.region: Value error, a bedrock provider needs `region` (or a "
        "base_url naming one, like https://bedrock-runtime.us-east-1.amazonaws.com)"
    )
    config = parse_config(
        config_text("api-key", "https://bedrock-proxy.internal", "eu-west-3"), env={}
    )
    assert config.providers["aws"].region == "eu-west-3"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("AKIAHUSHIDXXXXXXXXXX:", "IAM credentials need a secret access key"),
        ("AKIAHUSHIDXXXXXXXXXX:HUSHPART::", "too many ':'"),
        ("short-id:HUSHPART", "the access key id (before the first ':') must be 16 to 128"),
        ("AKIAHUSHIDXXXXXXXXXX::HUSHPART", "IAM credentials need a secret access key"),
        ("HUSH API KEY", "a bedrock key holds no whitespace"),
    ],
)
def test_a_key_of_neither_shape_is_refused_without_being_shown(key: str, problem: str) -> None:
    message = error(config_text(key))
    assert message.startswith("c.yaml:7: providers.aws.keys[0].key: Value error, ")
    assert problem in message
    assert "HUSH" not in message


def test_an_unquoted_key_that_yaml_reads_as_a_mapping_is_refused_without_being_shown() -> None:
    text = config_text("x").replace('- "x"', "- AKIAHUSHIDXXXXXXXXXX:HUSHPART:")
    message = error(text)
    assert message.startswith("c.yaml:6: providers.aws.keys: Value error, keys[0] reads as a")
    assert "HUSH" not in message


@pytest.mark.parametrize(
    "key",
    [
        "ABSKQmVkcm9ja0FQSUtleS1hYmNkZWY=",  # a long-term Bedrock API key (base64)
        "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29tLz9BY3Rpb249Q2FsbFdpdGhCZWFyZXJUb2tlbg==",
        "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "ASIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY:IQoJb3JpZ2luX2VjEOb//+/=",
    ],
    ids=["api_key", "short_term_api_key", "iam", "iam_with_session_token"],
)
def test_keys_of_either_shape_are_taken(key: str) -> None:
    config = parse_config(config_text(key), env={})
    assert config.providers["aws"].keys[0].key.get_secret_value() == key


def test_the_session_token_and_secret_are_secrets_on_their_own() -> None:
    provider = ProviderConfig.model_validate(
        {"kind": "bedrock", "base_url": RUNTIME, "keys": ["AKIAIOSFODNN7EXAMPLE:sec/ret:tok+en"]}
    )
    assert {"sec/ret", "tok+en"} <= set(provider.secrets())


def test_check_config_passes_on_the_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKQmVkcm9ja0FQSUtleS1hYmNkZWY=")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("ANTHROPIC_KEY", "sk-ant-example")
    monkeypatch.setenv("MY_APP_KEY", "app-key")

    assert main(["check-config", str(EXAMPLE)]) == 0
    captured = capsys.readouterr()
    assert "wJalrXUtnFEMI" not in captured.out + captured.err


def test_check_config_refuses_the_example_with_an_empty_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKQmVkcm9ja0FQSUtleS1hYmNkZWY=")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "")
    monkeypatch.setenv("ANTHROPIC_KEY", "sk-ant-example")
    monkeypatch.setenv("MY_APP_KEY", "app-key")

    assert main(["check-config", str(EXAMPLE)]) == 2
    err = capsys.readouterr().err
    assert "providers.bedrock-eu.keys[0].key" in err and "secret access key" in err
    assert "AKIAIOSFODNN7EXAMPLE" not in err


def test_a_misspelt_key_field_keeps_pydantics_message() -> None:
    text = config_text("x").replace('- "x"', "- {kye: abc}")
    assert "keys[0].kye: Extra inputs are not permitted" in error(text)
