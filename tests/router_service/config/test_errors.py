"""Errors a config file gets: where they are, and nothing of its secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from router_service.cli import main
from router_service.config import parse_config
from router_service.errors import ConfigError

BASE = """
providers:
  alpha:
    base_url: http://127.0.0.1:18100/v1
    keys: [sk-alpha]
models:
  chat:
    deployments: [{provider: alpha, model: small-fast}]
auth: {open: true}
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml", env={})
    return str(caught.value)


def test_duplicate_keys_are_errors_at_the_duplicate() -> None:
    twice = BASE + "models:\n  other:\n    deployments: [{provider: alpha, model: x}]\n"
    assert _error(twice) == "c.yaml:10: models: duplicate key (first on line 6)"
    inner = BASE.replace(
        "auth:",
        "  chat:\n    strategy: thompson\n    deployments: [{provider: alpha, model: y}]\nauth:",
    )
    assert _error(inner) == "c.yaml:9: models.chat: duplicate key (first on line 7)"
    flow = BASE.replace("model: small-fast}", "model: small-fast, model: z}")
    assert (
        _error(flow)
        == "c.yaml:8: models.chat.deployments[0].model: duplicate key (first on line 8)"
    )


def test_cross_references_point_at_the_offending_value() -> None:
    text = BASE.replace(
        "auth:",
        "  large:\n    deployments:\n      - {provider: alpha, model: a}\n"
        "      - {provider: anthropic, model: b}\n"
        "pools:\n  fast: {groups: [chat, nope]}\nauth:",
    )
    assert _error(text).splitlines() == [
        "c.yaml:12: models.large.deployments[1].provider: Value error, unknown provider "
        "'anthropic'",
        "c.yaml:14: pools.fast.groups[1]: Value error, unknown model group 'nope'",
    ]


def test_model_validators_point_below_their_model() -> None:
    clients = BASE.replace(
        "auth: {open: true}",
        "auth:\n  clients:\n    - {name: a, key: k1}\n    - {name: b, key: k2}\n"
        "    - {name: a, key: k1}\n",
    )
    assert _error(clients).splitlines() == [
        "c.yaml:13: auth.clients[2].name: Value error, client names must be unique "
        "(clients[0] has it too)",
        "c.yaml:13: auth.clients[2]: Value error, two clients have the same key "
        "(clients[0] and this one)",
    ]
    redis = BASE + "state:\n  backend: redis\n  url: http://h:6379\n"
    assert _error(redis) == (
        "c.yaml:12: state.url: Value error, state.url must start with redis://, rediss:// or "
        "unix://"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "providers:\n  a:\n    keys: [sk-live-SECRET-2\nauth: {open: true}\n",
            "c.yaml:4:5: invalid YAML: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence at line 3, column 11)",
        ),
        (
            "providers:\n  a: {key: sk-live-SECRET-2\n",
            "c.yaml:3:1: invalid YAML: expected ',' or '}'",
        ),
        ("providers:\n\tkeys: sk-live-SECRET-2\n", "c.yaml:2:1: invalid YAML: found character"),
    ],
)
def test_yaml_syntax_errors_do_not_quote_the_file(text: str, expected: str) -> None:
    message = _error(text)
    assert message.startswith(expected)
    assert "SECRET" not in message
    assert "\n" not in message


def test_check_config_prints_no_source_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  a:\n    keys: [sk-live-SECRET-2\nauth: {open: true}\n")
    assert main(["check-config", str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{bad}:4:5: invalid YAML" in captured.err
    assert "SECRET" not in captured.out + captured.err


def test_a_background_heartbeat_shorter_than_its_beats_is_refused() -> None:
    # A replica beats at most once a second, every third of the heartbeat: under 3 s live
    # background responses would read `failed` between two beats.
    text = BASE + "responses: {background_heartbeat_s: 2}\n"
    assert _error(text).startswith("c.yaml:10: responses.background_heartbeat_s: ")
    parse_config(BASE + "responses: {background_heartbeat_s: 3}\n", source="c.yaml", env={})


def test_a_flight_lease_shorter_than_its_renewals_can_hold_is_refused() -> None:
    # Renewed every third of it: under 1 s a leader would hammer Redis (a script every few
    # milliseconds per call at 0.01 s), and a round trip or a busy loop would let it lapse.
    for lease in ("0.01", "0.5"):
        text = BASE + f"cache: {{enabled: true, coalesce: cluster, flight_lease_s: {lease}}}\n"
        assert _error(text).startswith("c.yaml:10: cache.flight_lease_s: "), lease
    ok = BASE + "cache: {enabled: true, coalesce: cluster, flight_lease_s: 1}\n"
    parse_config(ok, source="c.yaml", env={})


def test_an_infinite_ttl_is_an_error() -> None:
    """`.inf` is no lifetime: in the state store an infinite TTL means FOREVER (no expiry, outside
    the memory store's budget), which only the issued keys' log may ask for; a cached answer or a
    stored response kept so would grow the memory with the traffic."""
    text = BASE + "cache: {enabled: true, ttl_s: .inf}\n"
    assert _error(text).startswith("c.yaml:10: cache.ttl_s: Input should be a finite number")
    text = BASE + "responses: {store_ttl_s: .nan}\n"
    assert _error(text).startswith("c.yaml:10: responses.store_ttl_s: Input should be a finite")


@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter2-pw@h:99999/0",  # a port past 65535
        "redis://:hunter2-pw@h:6379/zero",  # a database that is no number
        "redis://:hunter2/pw@h:6379/0",  # a `/` in the password, not percent-encoded
        "redis://:hunter2#pw@h:6379/0",  # a `#`: read as 127.0.0.1 with the password cut
        "unix://:hunter2-pw@/run/redis.sock?db=one",
        "redis://h:6379/0?password=hunter2-pw",  # a query the router would not read
        # A user with no password (or a password written where the user goes): no AUTH sent.
        "redis://hunter2-pw@h:6379/0",
        "unix://hunter2-pw@/run/redis.sock",
    ],
)
def test_a_redis_url_the_router_cannot_use_is_refused_at_load(url: str) -> None:
    """Loaded as it was, the router would crash at its start with a traceback (or, for a query
    or a user without a password, connect without the password it names) after `check-config`
    said OK."""
    message = _error(BASE + f"state:\n  backend: redis\n  url: {url!r}\n")
    assert message.startswith("c.yaml:12: state.url: Value error, state.url is not a Redis URL")
    assert "hunter2" not in message


def test_a_redis_url_with_its_password_percent_encoded_loads() -> None:
    text = BASE + "state:\n  backend: redis\n  url: 'redis://u:a%2Fb%40c@h:6380/2?db=2'\n"
    parse_config(text, source="c.yaml", env={})
    # An ACL user with `nopass`: its empty password is written (`AUTH user ""` is sent).
    parse_config(text.replace("u:a%2Fb%40c@", "u:@"), source="c.yaml", env={})


def test_a_key_listed_twice_in_one_pool_is_refused_at_the_second_never_quoted() -> None:
    """One key is one set of slots and limits: listed twice (two variables holding the same
    key), the pool would show it twice and serve half what its entries say."""
    text = BASE.replace("keys: [sk-alpha]", "keys: [sk-alpha, sk-beta, {key: sk-alpha, rpm: 5}]")
    error = _error(text)
    assert error == (
        "c.yaml:5: providers.alpha.keys[2]: Value error, the same key as keys[0] "
        "(a key is listed once: its one entry's limits are all it has)"
    )
    assert "sk-alpha" not in error


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("2026-02-30", "c.yaml:13: auth.clients[0].expires: not a date or time YAML can read"),
        ("2026-01-01 25:00:00", "c.yaml:13: auth.clients[0].expires: not a date or time"),
        ("2026-01-01T00:00:00+25:00", "c.yaml:13: auth.clients[0].expires: not a date or time"),
        ("0000-01-01", "c.yaml:13: auth.clients[0].expires: not a date or time YAML can read"),
    ],
)
def test_a_date_that_does_not_exist_is_refused_at_its_line(value: str, line: str) -> None:
    """YAML reads it as a date and Python makes none of it: its ValueError was a traceback
    (check-config, the router's start) and ended the router's reloads for good."""
    text = BASE.replace(
        "auth: {open: true}",
        f"auth:\n  clients:\n    - name: app\n      key: sk-app-1\n      expires: {value}\n",
    )
    message = _error(text)
    assert message.startswith(line)
    assert "sk-app-1" not in message


def test_a_file_that_is_not_utf8_is_refused_by_check_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A comment saved as Latin-1 (an editor's default elsewhere): a UnicodeDecodeError's
    traceback, exit status 1, where every other unreadable file is a usage error's 2."""
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"# r\xe9glages\n" + BASE.encode())
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: cannot read config: not UTF-8 text (line 1)" in err
    assert "Traceback" not in err and "sk-alpha" not in err


def test_a_tag_yaml_does_not_read_is_refused_at_its_line_never_quoted() -> None:
    """`!secret` (a habit from other tools' files): a traceback whose ConstructorError quoted
    the source line, key and all."""
    text = BASE.replace("keys: [sk-alpha]", "keys: [!secret sk-alpha-SECRET]")
    message = _error(text)
    assert message.startswith("c.yaml:5: providers.alpha.keys[0]: a YAML tag it does not read")
    assert "SECRET" not in message


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("!!bool maybe-sk-bool-SECRET", "valid !!bool"),
        ("!!bool ''", "valid !!bool"),
        ("!!timestamp nope-sk-ts-SECRET", "date or time YAML can read"),
        ("!!int ''", "valid !!int"),
        ("!!int '-'", "valid !!int"),
        ("!!float '_'", "valid !!float"),
    ],
)
def test_a_standard_tag_on_a_value_it_cannot_make_is_refused_at_its_line(
    value: str, kind: str
) -> None:
    """An explicit `!!bool`, `!!timestamp`, `!!int` or `!!float` YAML's own constructor cannot
    make a value of raises KeyError (quoting the value), AttributeError or IndexError, not the
    ValueError the impossible date does: a traceback, and a reload task ended for good."""
    text = BASE.replace("base_url: http://127.0.0.1:18100/v1", f"base_url: {value}")
    message = _error(text)
    assert message.startswith(f"c.yaml:4: providers.alpha.base_url: not a {kind} (quote it")
    assert "SECRET" not in message


def test_a_file_nested_deeper_than_python_recurses_is_refused_by_check_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value nested thousands deep (`[[[…]]]`, a generator's runaway): YAML's composer
    recursed into a RecursionError, a traceback here and, on SIGHUP, the end of the reload task
    as any error but a ConfigError is."""
    deep = tmp_path / "deep.yaml"
    deep.write_text(BASE + "extra: " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["check-config", str(deep)]) == 2
    err = capsys.readouterr().err
    assert f"{deep}: invalid YAML: nested too deeply" in err
    assert "Traceback" not in err and "sk-alpha" not in err


@pytest.mark.parametrize(
    "tagged",
    [
        "keys: !secret [sk-alpha-SECRET]",
        "keys: !env\n      - sk-alpha-SECRET",
        "keys: !!set {sk-alpha-SECRET}",
        "keys: !!omap [{a: sk-alpha-SECRET}]",
    ],
)
def test_a_tag_on_a_list_or_mapping_is_refused_at_its_line_never_quoted(tagged: str) -> None:
    """A scalar's unknown tag was refused, a list's or a mapping's silently dropped: the value
    read as if untagged (or `!!set` as a mapping), what the operator meant never said."""
    message = _error(BASE.replace("keys: [sk-alpha]", tagged))
    assert message.startswith("c.yaml:5: providers.alpha.keys: a YAML tag it does not read")
    assert "SECRET" not in message


def test_a_tag_on_a_section_is_refused_at_its_line() -> None:
    message = _error(BASE.replace("auth: {open: true}", "auth: !include {open: true}"))
    assert message == (
        "c.yaml:9: auth: a YAML tag it does not read (write the value plainly, or quote it)"
    )


def test_the_standard_tags_of_a_list_and_a_mapping_are_read() -> None:
    text = BASE.replace("keys: [sk-alpha]", "keys: !!seq [sk-alpha]").replace(
        "auth: {open: true}", "auth: !!map {open: true}"
    )
    assert parse_config(text, source="c.yaml", env={}).auth.open


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("!secret alpha:", "a YAML tag it does not read"),
        ("!!binary YWxwaGE=:", "a YAML tag it does not read"),
        ("? [sk-alpha-SECRET]\n  :", "a list or a mapping as a key"),
    ],
)
def test_a_tag_on_a_key_is_refused_at_its_line_never_quoted(key: str, why: str) -> None:
    """A key's tag was dropped as a list's was (`!secret alpha:` read as `alpha:`, `!!binary`
    as its base64 text), a list as a key named the provider after its nodes' repr."""
    message = _error(BASE.replace("alpha:", key, 1))
    assert message.startswith(f"c.yaml:3: providers: {why}")
    assert "SECRET" not in message and "YWxwaGE" not in message


def test_the_plain_tags_of_a_key_are_read() -> None:
    text = BASE.replace("alpha:", "!!str alpha:", 1).replace("{open: true}", "{!!str open: true}")
    assert parse_config(text, source="c.yaml", env={}).auth.open
