"""One YAML file, validated, with ${ENV} interpolation and errors that name their place."""

from __future__ import annotations

from pathlib import Path

import pytest

from router_service.cli import main
from router_service.config import load_config, parse_config
from router_service.errors import ConfigError

GOOD = """
providers:
  openai:
    base_url: https://api.example.com/v1/
    keys:
      - ${OPENAI_KEY}
      - key: ${OTHER_KEY:-sk-default}
        max_in_flight: 4
models:
  gpt:
    deployments:
      - {provider: openai, model: gpt-4o-mini}
auth: {open: true}
"""


def test_interpolates_env_and_defaults() -> None:
    config = parse_config(GOOD, env={"OPENAI_KEY": "sk-from-env"})
    keys = config.providers["openai"].keys
    assert [k.key.get_secret_value() for k in keys] == ["sk-from-env", "sk-default"]
    assert keys[1].max_in_flight == 4
    assert config.providers["openai"].base_url == "https://api.example.com/v1"
    assert "sk-from-env" not in repr(config)  # secrets are SecretStr


def test_missing_env_names_variable_and_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(GOOD, source="c.yaml", env={})
    assert (
        str(caught.value)
        == "c.yaml:6: providers.openai.keys[0]: environment variable OPENAI_KEY is not set"
    )


def test_validation_errors_carry_their_location() -> None:
    text = GOOD.replace("max_in_flight: 4", "max_in_flight: lots").replace(
        "base_url: https", "base_url: ftp"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml", env={"OPENAI_KEY": "k"})
    lines = str(caught.value).splitlines()
    assert (
        "c.yaml:4: providers.openai.base_url: Value error, base_url must start with http:// or https://"
        in lines
    )
    assert any(
        line.startswith("c.yaml:8: providers.openai.keys[1].max_in_flight:") for line in lines
    )


def test_unknown_keys_and_providers_are_errors() -> None:
    typo = GOOD.replace("models:", "    tiemouts: {}\nmodels:")
    with pytest.raises(ConfigError, match=r"providers\.openai\.tiemouts: Extra inputs"):
        parse_config(typo, env={"OPENAI_KEY": "k"})
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        parse_config(GOOD.replace("{provider: openai", "{provider: nope"), env={"OPENAI_KEY": "k"})


def test_the_cache_names_models_that_exist() -> None:
    env = {"OPENAI_KEY": "k"}
    config = parse_config(GOOD + "cache: {enabled: true, models: [gpt, openai/gpt-4.1]}\n", env=env)
    assert config.cache.enabled and config.cache.models == ["gpt", "openai/gpt-4.1"]
    assert not parse_config(GOOD, env=env).cache.enabled  # off unless turned on
    for name in ("gtp", "nope/gpt", "openai"):
        with pytest.raises(ConfigError, match=rf"cache\.models\[1\]: .*unknown model '{name}'"):
            parse_config(GOOD + f"cache: {{models: [gpt, {name}]}}\n", env=env)


def test_invalid_yaml_and_empty_file() -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        parse_config("providers: [", env={})
    with pytest.raises(ConfigError, match="empty"):
        parse_config("", env={})


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD.replace("${OPENAI_KEY}", "sk-literal"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: {}\n")

    assert main(["check-config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["check-config", str(bad)]) == 2
    assert f"{bad}:1: providers:" in capsys.readouterr().err


def test_shipped_examples_are_valid() -> None:
    root = Path(__file__).resolve().parents[3]
    config = load_config(root / "examples" / "dev.yaml", env={})
    assert "demo-chat" in config.models


def test_a_pickroute_lease_cannot_outlive_the_holds_it_keeps() -> None:
    env = {"OPENAI_KEY": "k"}
    # Unreported for longer than its key lease or its session mark live, a pick's key and
    # session would count for nobody while its caller still uses them.
    for holds, name in (
        ("server: {route_lease_ttl_s: 1000}", r"server\.lease_ttl_s"),
        (
            "sessions: {active_ttl_s: 60}\nserver: {route_lease_ttl_s: 120}",
            r"sessions\.active_ttl_s",
        ),
    ):
        with pytest.raises(ConfigError, match=rf"server\.route_lease_ttl_s: .*{name}"):
            parse_config(GOOD + holds + "\n", env=env)
    # Left at its default, it is as short as they are: a short lease_ttl_s stays usable.
    config = parse_config(GOOD + "server: {lease_ttl_s: 60}\n", env=env)
    assert config.route_lease_ttl_s == 60
    assert parse_config(GOOD, env=env).route_lease_ttl_s == 300


def test_thread_protection_off_unquoted_is_off() -> None:
    """YAML 1.1 reads a bare `off` as false: written as README's list of values says, it was
    refused with "Input should be 'provider-ban', 'model-skip' or 'off'"."""
    text = (
        "providers:\n  p: {base_url: 'http://h/v1', keys: [k1], thread_protection: off}\n"
        "auth: {open: true}\n"
    )
    assert parse_config(text, env={}).providers["p"].thread_protection == "off"
    with pytest.raises(ConfigError, match="thread_protection"):
        parse_config(text.replace(": off", ": on"), env={})  # true is no value of it


@pytest.mark.parametrize(
    ("kind", "version"), [("azure", "2024-10-21"), ("anthropic", "2023-06-01")]
)
def test_an_unquoted_api_version_is_the_date_written(kind: str, version: str) -> None:
    """YAML reads a bare 2024-10-21 as a date: it was refused as "Input should be a valid
    string" (README's table gives the default unquoted)."""
    text = (
        f"providers:\n  p: {{kind: {kind}, base_url: 'https://h.example', keys: [k1], "
        f"api_version: {version}}}\nauth: {{open: true}}\n"
    )
    assert parse_config(text, env={}).providers["p"].api_version == version


def test_an_unquoted_date_in_a_header_is_the_date_written() -> None:
    """`anthropic-version: 2023-06-01` under `headers:` was refused as "Input should be a valid
    string" (YAML reads it as a date), as `api_version:` was; a date with a time is not what
    was written once rewritten (`T`): still refused."""
    text = (
        "providers:\n  p: {kind: anthropic, base_url: 'https://h.example', keys: [k1], "
        "headers: {HEADERS}}\nauth: {open: true}\n"
    )
    config = parse_config(text.replace("HEADERS", "anthropic-version: 2023-06-01"), env={})
    assert config.providers["p"].headers == {"anthropic-version": "2023-06-01"}
    with pytest.raises(ConfigError, match=r"headers\.x-at: Input should be a valid string"):
        parse_config(text.replace("HEADERS", "x-at: 2023-06-01 10:00:00"), env={})


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("https://user:sk-in-url@api.example.com:notaport/v1", "port"),
        ("https://api.example.com:99999/v1", "port"),
        ("https://[::1/v1", "port"),
        ("https:///v1", "host"),
        # Every call appends its path after these: `…/v1?x=1/chat/completions` asked for /v1
        # (a 404 blamed on the caller), `…/v1#x/chat/completions` the same; no host name
        # holds a space.
        ("https://api.example.com/v1?api-version=2024-10-21", "query"),
        ("https://api.example.com/v1#main", "fragment"),
        ("https://api.example.com /v1", "text"),
    ],
)
def test_a_base_url_no_request_could_use_is_refused_at_load(base_url: str, why: str) -> None:
    # Loaded as valid, such a URL failed every call to its provider with an internal error
    # (httpx's InvalidURL at request time); the message never repeats the URL (credentials).
    text = GOOD.replace("https://api.example.com/v1/", base_url)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml", env={"OPENAI_KEY": "k"})
    message = str(caught.value)
    assert f"c.yaml:4: providers.openai.base_url: Value error, base_url: its {why}" in message
    assert "sk-in-url" not in message and "notaport" not in message


@pytest.mark.parametrize(
    ("replace", "where"),
    [
        (("${OPENAI_KEY}", "sk-SEKRIT\u2603key"), "c.yaml:6: providers.openai.keys[0]"),
        (
            ("keys:", "headers: {x-api-key: 'TOKVAL\u2019x'}\n    keys:"),
            "c.yaml:5: providers.openai.headers.x-api-key",
        ),
        (
            ("keys:", "headers: {x-title: 'TITLEVAL\u00e9'}\n    keys:"),
            "c.yaml:5: providers.openai.headers.x-title",
        ),
    ],
)
def test_a_key_or_header_no_http_request_can_carry_is_refused_at_load(
    replace: tuple[str, str], where: str
) -> None:
    # HTTP header values are ASCII: loaded, such a key or header failed every call to its
    # provider with an internal error (UnicodeEncodeError). Refused by its path, never shown.
    text = GOOD.replace(*replace)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml", env={"OPENAI_KEY": "k"})
    message = str(caught.value)
    assert where in message and "printable ASCII" in message
    assert not any(value in message for value in ("SEKRIT", "TOKVAL", "TITLEVAL"))


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("azure", "AZKEY\u2019abcdef0123456789abcdef"),  # an `api-key` pasted from the portal
        ("vertex", "AQ.Ab8RN6AZKEY\u2019abcdefghijk"),  # an express mode API key
        ("vertex", "ya29.AZKEY\u00a0abcdef"),  # an access token
    ],
)
def test_an_azure_or_vertex_key_sent_as_is_no_http_request_can_carry_is_refused(
    kind: str, key: str
) -> None:
    # Their keys sent in a header (`api-key`, `x-goog-api-key`, `Authorization`) failed every
    # call with a UnicodeEncodeError as the other kinds' did: only `file:` and JSON keys
    # (credentials that may span lines) are read rather than sent.
    text = f"""
providers:
  p:
    kind: {kind}
    base_url: https://res.example.com
    project: acme-prod
    location: us-central1
    keys: ["{key}"]
models:
  m:
    deployments:
      - {{provider: p, model: m}}
auth: {{open: true}}
"""
    if kind == "azure":
        text = text.replace("    project: acme-prod\n    location: us-central1\n", "")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml", env={})
    message = str(caught.value)
    assert "providers.p.keys[0]" in message and "printable ASCII" in message
    assert "AZKEY" not in message


@pytest.mark.parametrize("name", ["x api key", "x-api-key:", "", "x(team)", "x/title"])
def test_a_header_name_http_cannot_carry_is_refused_at_load(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loaded, such a name failed every call to its provider: the upstream's 400 ("Invalid
    # header token", quoting the header line, its value too) passed on to each caller as its
    # own mistake. A name is a token (RFC 9110 5.1): letters, digits and !#$%&'*+-.^_`|~.
    text = GOOD.replace("keys:", f"headers: {{'{name}': TOKVAL}}\n    keys:")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    path.chmod(0o600)
    monkeypatch.setenv("OPENAI_KEY", "sk-k")
    assert main(["check-config", str(path)]) == 2
    message = capsys.readouterr().err
    assert f"c.yaml:5: providers.openai.headers.{name}: Value error, " in message
    assert "not a header name" in message and "TOKVAL" not in message


@pytest.mark.parametrize("section", ["models", "pools"])
@pytest.mark.parametrize("name", ["openai/gpt-4o-mini", "openai"])
def test_a_group_or_pool_named_as_a_deployment_or_provider_is_refused(
    section: str, name: str
) -> None:
    # A name is looked up as a group or pool first: a pool called `openai/gpt-4o-mini` took
    # every call naming that deployment to its own groups' deployments, without a word.
    group = "{deployments: [{provider: openai, model: other}]}"
    added = f"models:\n  {name}: {group}\n" if section == "models" else "models:\n"
    text = GOOD.replace("models:\n", added)
    if section == "pools":
        text += f"pools:\n  {name}: {{groups: [gpt]}}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml", env={"OPENAI_KEY": "k"})
    assert f"{section}.{name}: Value error, the " in str(caught.value)
    assert "shadows a deployment name" in str(caught.value)
