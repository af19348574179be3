"""Log lines: JSON with the current trace and span ids, the component, `extra` fields, and no
secrets — neither configured ones nor anything shaped like a key or a bearer token."""

from __future__ import annotations

import logging
import sys

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router_service.auth import AuditEvent, audit
from router_service.telemetry import JsonFormatter, Redactor
from router_service.telemetry._logging import (
    _PATTERNS,
    _QUERY_MASK,
    _QUERY_SECRET,
    _URL_MASK,
    _URL_PASSWORD,
    MASK,
    TextFormatter,
    component,
)
from router_service.telemetry.testing import TelemetryCapture


def record(
    message: str, *args: object, name: str = "switchboard.router", **extra: object
) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_line_carries_the_trace_and_span_of_the_current_span(
    captured: TelemetryCapture,
) -> None:
    formatter = JsonFormatter()
    with captured.telemetry.tracer.start_as_current_span("work") as span:
        line = orjson.loads(formatter.format(record("picked %s", "alpha/model-a")))
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    assert line["message"] == "picked alpha/model-a"
    assert line["level"] == "WARNING"
    assert line["component"] == "router"
    assert line["logger"] == "switchboard.router"
    assert line["ts"].endswith("Z")


def test_outside_a_span_there_are_no_ids_and_extra_fields_come_along() -> None:
    line = orjson.loads(JsonFormatter().format(record("done", deployment="beta/x", attempts=2)))
    assert "trace_id" not in line and "span_id" not in line
    assert line["deployment"] == "beta/x" and line["attempts"] == 2


@pytest.mark.parametrize(
    ("logger", "expected"),
    [
        ("switchboard.router", "router"),
        ("switchboard.telemetry", "telemetry"),
        ("router_service.engine._attempts", "router"),
        ("router_service.fake_upstream._server", "fake-upstream"),
        ("http_edge._routes_chat", "edge"),
        ("uvicorn.error", "edge"),
        ("grpc._cython", "grpc"),
    ],
)
def test_components(logger: str, expected: str) -> None:
    assert component(logger) == expected


def test_secrets_never_reach_a_line() -> None:
    formatter = JsonFormatter(Redactor(["upstream-secret-123", "redis://:pw@host"]))
    try:
        raise ValueError("failed with key upstream-secret-123")
    except ValueError:
        failed = record("boom")
        failed.exc_info = sys.exc_info()
    lines = [
        formatter.format(record("key %s", "upstream-secret-123")),
        formatter.format(record("auth: Bearer abcdef123456 and sk-live-abcdefghijklmnop")),
        formatter.format(record("google AIzaSyA1234567890abcdefghijklmn")),
        formatter.format(record("state", url="redis://:pw@host")),
        formatter.format(failed),
    ]
    text = "\n".join(lines)
    for secret in ("upstream-secret-123", "abcdef123456", "sk-live", "AIzaSy", "redis://:pw"):
        assert secret not in text
    assert text.count("[redacted]") >= 6
    assert all(isinstance(orjson.loads(line), dict) for line in lines)  # still valid JSON


@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
def test_a_secret_json_escapes_is_masked_too(formatter: type[JsonFormatter]) -> None:
    """A password with a quote or a backslash (a Redis URL's, an admin token) is written escaped
    in a JSON line, and in a text line's quoted field: it is masked there too."""
    secret = 'pa"ss\\word-42'
    redacting = formatter(Redactor([secret]))
    lines = [
        redacting.format(record("connecting with %s", secret)),
        redacting.format(record("state", password=f"{secret} again")),
    ]
    text = "\n".join(lines)
    assert secret not in text and orjson.dumps(secret).decode()[1:-1] not in text
    assert text.count(MASK) == 2
    if formatter is JsonFormatter:
        assert all(secret not in str(orjson.loads(line)) for line in lines)


CALLER_KEY = "plainclientkey-0123456789abcdef"  # a configured client key: stored hashed only


@pytest.mark.parametrize(
    "said",
    [
        # A WebSocket handshake's headers, as uvicorn's debug lines write them (a browser's
        # Realtime key rides in a subprotocol), and the API-key headers of the edge's APIs.
        f"< sec-websocket-protocol: realtime, openai-insecure-api-key.{CALLER_KEY}",
        f"< x-api-key: {CALLER_KEY}",
        f"< X-Goog-Api-Key: {CALLER_KEY}",
        f"headers {{'api-key': '{CALLER_KEY}'}}",
        f'headers {{"api-key": "{CALLER_KEY}"}}',  # escaped in a JSON line: \"api-key\"
        # A key of any shape after `Bearer` (a realtime handshake's `authorization` header).
        f"< authorization: Bearer team!{CALLER_KEY}",
        f"session opened with ek_{CALLER_KEY}",  # an ephemeral client secret
    ],
)
@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
def test_a_key_in_a_handshake_or_an_api_key_header_is_masked(
    formatter: type[JsonFormatter], said: str
) -> None:
    line = formatter(Redactor()).format(record("%s", said, name="uvicorn.error"))
    assert CALLER_KEY not in line and MASK in line


def test_text_lines_are_redacted_and_carry_the_trace_id(captured: TelemetryCapture) -> None:
    formatter = TextFormatter(Redactor(["upstream-secret-123"]))
    with captured.telemetry.tracer.start_as_current_span("work") as span:
        line = formatter.format(record("key %s", "upstream-secret-123"))
    assert "upstream-secret-123" not in line
    assert f"trace_id={span.get_span_context().trace_id:032x}" in line


def test_an_audit_line_says_each_field_once_and_text_lines_show_them() -> None:
    logger = logging.getLogger("switchboard.audit")
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign,assignment]
    logger.addHandler(handler)
    try:
        logger.setLevel(logging.INFO)
        audit(AuditEvent("success", "/switchboard.v1.RouterService/Chat", "ipv4:1.2.3.4:5", "app"))
    finally:
        logger.removeHandler(handler)
    json_line = JsonFormatter().format(seen[0])
    assert orjson.loads(json_line)["client"] == "app"
    assert json_line.count("RouterService/Chat") == 1  # not again inside `message`
    text = TextFormatter().format(seen[0])
    assert text.endswith(
        "auth success outcome=success method=/switchboard.v1.RouterService/Chat "
        "peer=ipv4:1.2.3.4:5 client=app event=auth"
    )


def test_a_field_from_a_caller_stays_one_field_in_text_lines() -> None:
    """A direct gRPC caller sets `x-forwarded-for` to anything printable: in a text line it
    read as fields of its own (`client=ops outcome=success`)."""
    forged = "6.6.6.6 client=ops outcome=success"
    line = TextFormatter().format(record("auth failure", forwarded_for=forged))
    assert line.endswith('forwarded_for="6.6.6.6 client=ops outcome=success"')
    line = TextFormatter().format(record("auth failure", forwarded_for="1.2.3.4\nforged"))
    assert line.endswith('forwarded_for="1.2.3.4\\nforged"')


def test_uvicorns_coloured_copy_of_a_message_is_no_field() -> None:
    line = record("Started server process [%d]", 7, color_message="Started \x1b[36m%d\x1b[0m")
    assert "color_message" not in orjson.loads(JsonFormatter().format(line))
    assert TextFormatter().format(line).endswith("Started server process [7]")


_FRAGMENTS = st.sampled_from(
    [
        *("Bearer ", "bEaReR\t", "bearer", "sk-", "sk-ant-", "AIza", "x" * 20, "abc_DEF-123."),
        *(" ", "\n", "ek_", "api-key", "X-API-KEY: ", "'api-key': '", "openai-insecure-api-key."),
        *(",", ":", "\\", "://", "redis://", "@", "/", '"', "?", "&", "=", "key=", "Token="),
        *(";", ";token=", "bearer=", "Authorization="),
    ]
)


@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=12)), max_size=12).map("".join))
def test_the_quick_check_never_skips_a_line_the_patterns_would_change(text: str) -> None:
    urls = _QUERY_SECRET.sub(_QUERY_MASK, _URL_PASSWORD.sub(_URL_MASK, text))
    assert Redactor()(text) == _PATTERNS.sub(MASK, urls)


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("redis://:hunter2-pw@10.0.0.9:6379/0", "redis://:[redacted]@10.0.0.9:6379/0"),
        ("rediss://default:p%40ss-word@cache:6380", "rediss://default:[redacted]@cache:6380"),
        ("via socks5://ops:hunter2-pw@gw:1080 failed", "via socks5://ops:[redacted]@gw:1080"),
    ],
)
@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
def test_a_urls_password_is_masked_though_no_config_named_it(
    formatter: type[JsonFormatter], said: str, shown: str
) -> None:
    """An error's words quote the URL it failed on: its password, the configured one's or
    not (a replica's, a proxy's), never reaches a line; where it failed does."""
    line = formatter(Redactor()).format(record("store failed: %s", said))
    assert "hunter2" not in line and "p%40ss" not in line
    assert shown in line


def test_a_url_without_a_password_is_left_as_it_is() -> None:
    text = "GET http://host:8080/v1/models@latest https://user@host socks5://gw:1080"
    assert Redactor()(text) == text


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        # A user that is an e-mail address: urllib, httpx and redis-py take the userinfo up to
        # the last `@`, so the password is `hunter2-pw`.
        ("socks5://ops@corp.example:hunter2-pw@gw:1080", "socks5://ops@corp.example:[redacted]@gw"),
        # A password holding an `@` as typed: the whole of it, not what follows its first `@`.
        ("redis://:hunter2@pw@10.0.0.9:6379/0", "redis://:[redacted]@10.0.0.9:6379/0"),
    ],
)
@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
def test_a_urls_password_is_masked_whole_whatever_at_signs_its_userinfo_holds(
    formatter: type[JsonFormatter], said: str, shown: str
) -> None:
    line = formatter(Redactor()).format(record("store failed: %s", said))
    assert "hunter2" not in line and "-pw" not in line and "@pw" not in line
    assert shown in line


def test_a_credential_in_a_urls_query_is_masked_the_rest_of_the_query_kept() -> None:
    """`?key=`, `?token=`… of any shape (a caller's key there is not `sk-…` for sure); the
    parameter's name and the other parameters (which model, how many tokens) stay."""
    said = (
        '"WebSocket /v1/realtime?model=voice&token=plain-Key_1" 401'
        " GET /v1beta/models/m:generateContent?alt=sse&key=plain2&max_tokens=5"
        " https://acct.blob.example/f?sv=2024&X-Amz-Signature=f00d&apiKey=plain3#access_token=plain4"
    )
    shown = Redactor()(said)
    assert not any(f"plain{n}" in shown for n in ("-Key_1", "2", "3", "4"))
    assert '/v1/realtime?model=voice&token=[redacted]" 401' in shown
    assert "?alt=sse&key=[redacted]&max_tokens=5" in shown
    assert "X-Amz-Signature=[redacted]&apiKey=[redacted]#access_token=[redacted]" in shown


def test_a_credential_after_a_semicolon_or_named_bearer_is_masked() -> None:
    """`;` separates parameters too (a path's matrix parameters, `?a=1;b=2` queries), and a
    parameter named `bearer` or `authorization` holds a credential as surely as `token`."""
    said = (
        "GET /v1/x;token=plain1 /v1/y?a=1;api_key=plain2&model=m"
        " /v1/z?bearer=plain3&n=1 /v1/w?Authorization=plain4 /v1/v?X-Access-Token=plain5"
    )
    shown = Redactor()(said)
    assert not any(f"plain{n}" in shown for n in range(1, 6)), shown
    assert "/v1/x;token=[redacted] " in shown
    assert "?a=1;api_key=[redacted]&model=m" in shown
    assert "?bearer=[redacted]&n=1" in shown
    assert "?Authorization=[redacted] " in shown


_HOSTILE = (
    ";" + "a" * 2**20,
    "a=1" + ";a-a.b" * 2**17,
    "?" + "token" * 2**18,
    "x=1" + "&;#?" * 2**18,
)


@pytest.mark.parametrize("index", range(len(_HOSTILE)))
def test_a_hostile_mebibyte_is_redacted_in_linear_work(index: int) -> None:
    """A 1 MiB line built to make the query pattern retry at every separator: redacted (under
    the test's timeout, a generous bound; each name's search ends at the next separator)."""
    text = _HOSTILE[index]
    assert len(Redactor()(text)) >= len(text) // 2


@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
def test_a_secret_given_after_the_formatter_was_made_on_an_empty_redactor_is_masked(
    formatter: type[JsonFormatter],
) -> None:
    """A router started on a file with no secret (keyless providers, callers by hash) sets its
    log up on the process's redactor still empty; a reload's new key reaches that redactor."""
    redactor = Redactor()
    made = formatter(redactor)
    redactor.replace("router", ["a-key-of-no-known-shape"])
    assert "a-key-of-no-known-shape" not in made.format(record("key a-key-of-no-known-shape"))
