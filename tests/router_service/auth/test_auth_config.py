"""The `auth:` section and its neighbours: hashed keys, explicit open mode, TLS, CORS, sizes; the
warning for a readable file holding secrets; the method table covers every RPC."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pytest

import router_service.auth as auth
from clients.switchboard.v1 import admin_service_pb2, router_service_pb2
from router_service.auth import ANONYMOUS, Authenticator, bearer_token, hash_key, rule_for
from router_service.clock import ManualClock
from router_service.config import AuthConfig, SwitchboardConfig, load_config, parse_config
from router_service.errors import AuthenticationError, ConfigError
from router_service.keys import fingerprint

PROVIDERS = "providers:\n  p: {base_url: 'http://127.0.0.1:9/v1', keys: ['${P_KEY:-sk-p}']}\n"


def config(**sections: Any) -> SwitchboardConfig:
    data = {"providers": {"p": {"base_url": "http://127.0.0.1:9/v1", "keys": ["k"]}}}
    return SwitchboardConfig.model_validate({**data, **sections})


def test_no_auth_section_is_refused_unless_open() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(PROVIDERS, source="c.yaml", env={})
    assert "auth: Value error, no client keys" in str(caught.value)
    assert "auth.open: true" in str(caught.value)
    assert parse_config(PROVIDERS + "auth: {open: true}\n", env={}).auth.open


def test_plain_key_is_hashed_at_load_and_never_kept() -> None:
    text = PROVIDERS + "auth:\n  clients:\n    - {name: app, key: '${APP_KEY}', rpm: 5}\n"
    loaded = parse_config(text, env={"APP_KEY": "sk-app-secret"})
    [app] = loaded.auth.clients
    assert app.key_sha256 == hashlib.sha256(b"sk-app-secret").hexdigest()
    assert "sk-app-secret" not in repr(loaded) + loaded.model_dump_json()
    assert (app.models, app.scopes, app.rpm) == (["*"], ["chat", "embed", "models"], 5)


@pytest.mark.parametrize(
    ("client", "message"),
    [
        ({"name": "a", "key": "k", "key_sha256": "0" * 64}, "not both"),
        ({"name": "a", "key_sha256": "abc"}, "64 hex digits"),
        ({"name": "a"}, "key_sha256"),
        ({"name": "a", "key_sha256": "0" * 64, "scopes": ["root"]}, "scopes"),
        ({"name": "a", "key_sha256": "0" * 64, "rpm": 0}, "rpm"),
    ],
)
def test_bad_client_entries(client: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(auth={"clients": [client]})


def test_duplicate_names_and_keys() -> None:
    with pytest.raises(ValueError, match="names must be unique"):
        config(auth={"clients": [{"name": "a", "key": "x"}, {"name": "a", "key": "y"}]})
    with pytest.raises(ValueError, match="same key"):
        config(auth={"clients": [{"name": "a", "key": "x"}, {"name": "b", "key": "x"}]})


def test_key_sha256_is_normalised() -> None:
    upper = hash_key("sk-x").upper()
    loaded = config(auth={"clients": [{"name": "a", "key_sha256": f" {upper} "}]})
    assert loaded.auth.clients[0].key_sha256 == hash_key("sk-x")


def test_tls_cors_and_message_sizes() -> None:
    with pytest.raises(ValueError, match="require_client_cert needs client_ca_file"):
        config(
            auth={"open": True},
            server={"tls": {"cert_file": "c", "key_file": "k", "require_client_cert": True}},
        )
    with pytest.raises(ValueError, match="cert_file and key_file go together"):
        config(auth={"open": True}, edge={"router_tls": {"cert_file": "c"}})
    for origin in ("https://a.example/", "a.example", "ftp://a.example", "https://"):
        with pytest.raises(ValueError, match="CORS origin"):
            config(auth={"open": True}, edge={"cors_origins": [origin]})
    ok = config(auth={"open": True}, edge={"cors_origins": ["*", "http://localhost:5001"]})
    assert ok.edge.cors_origins == ["*", "http://localhost:5001"]
    with pytest.raises(ValueError, match=r"below edge\.max_body_bytes"):
        config(
            auth={"open": True},
            server={"max_message_bytes": 1 << 20},
            edge={"max_body_bytes": 2 << 20},
        )
    assert config(auth={"open": True}).server.max_tokens_ceiling == 128_000


def test_bearer_token() -> None:
    assert bearer_token("Bearer sk-1") == "sk-1"
    assert bearer_token("  bearer   sk-1 ") == "sk-1"
    for value in (None, "", "Bearer", "Bearer  ", "Basic sk-1", "sk-1"):
        assert bearer_token(value) is None


def test_authenticator() -> None:
    keys = AuthConfig.model_validate(
        {"clients": [{"name": "a", "key": "sk-a", "models": ["g*"]}, {"name": "b", "key": "sk-b"}]}
    )
    authenticator = Authenticator(keys)
    assert authenticator.identify("sk-b").name == "b"
    caller = authenticator.identify("sk-a")
    assert caller.may_use("gpt") and not caller.may_use("claude")
    with pytest.raises(AuthenticationError, match="Incorrect"):
        authenticator.identify("sk-c")
    with pytest.raises(AuthenticationError, match="Missing"):
        authenticator.identify(None)
    # Open mode: known keys keep their own limits; anyone else is `anonymous`.
    open_mode = Authenticator(keys.model_copy(update={"open": True}))
    assert open_mode.identify("sk-a").name == "a"
    assert open_mode.identify("sk-c") is ANONYMOUS
    assert open_mode.identify(None) is ANONYMOUS
    assert ANONYMOUS.scopes == {"chat", "embed", "models", "admin", "route"}


def scope_of(method: str) -> str | None:
    rule = rule_for(method)
    return None if rule is None else rule.scope


def test_every_rpc_has_a_rule() -> None:
    """A new RPC must be given a scope here on purpose (unlisted ones need `admin`)."""
    router = router_service_pb2.DESCRIPTOR.services_by_name["RouterService"]
    for method in router.methods:
        name = f"/{router.full_name}/{method.name}"
        assert name in auth.RULES, f"{name} has no scope in router_service/auth/_methods.py"
    assert scope_of("/switchboard.v1.RouterService/PickRoute") == "route"
    assert scope_of("/switchboard.v1.RouterService/Unlisted") == "admin"
    admin = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
    for method in admin.methods:
        assert scope_of(f"/{admin.full_name}/{method.name}") == "admin"
    assert rule_for("/grpc.health.v1.Health/Check") is None
    assert rule_for("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") is None


def test_exports() -> None:
    assert auth.__all__ == [
        *("ADMIN_SERVICE", "ANONYMOUS", "EPHEMERAL_PREFIX", "ISSUED_PREFIX", "ROUTER_SERVICE"),
        "RULES",
        *("AdminKeyOutOfScopeError", "Admission", "Attempt"),
        *("AuditEvent", "Authenticator", "BudgetReading", "BudgetStanding", "Budgets"),
        "Caller",
        *("CallerLimits", "ClientSecretAsk", "Gate", "IssuedKey", "IssuedKeys", "LimitStanding"),
        *(
            "MethodRule",
            "RateStatus",
            "RateTicket",
            "RealtimeGrant",
            "audit",
            "audited_request_id",
            "bearer_token",
            "check_max_tokens",
            "client_secret_ask",
            "current_admission",
            "current_caller",
            "current_standing",
            "current_stream_admission",
        ),
        *("hash_key", "rule_for", "set_current_admission", "set_current_caller"),
        *("set_current_standing", "unknown_key_error"),
    ]
    assert all(hasattr(auth, name) for name in auth.__all__)


@pytest.mark.parametrize(
    ("body", "mode", "warns"),
    [
        ("auth:\n  clients: [{name: a, key: sk-literal}]\n", 0o644, True),
        ("auth:\n  clients: [{name: a, key: sk-literal}]\n", 0o600, False),
        ("auth:\n  clients: [{name: a, key: '${A_KEY:-x}'}]\n", 0o644, False),
        ("auth:\n  clients: [{name: a, key_sha256: '" + "0" * 64 + "'}]\n", 0o644, False),
    ],
)
def test_readable_file_with_secrets_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, body: str, mode: int, warns: bool
) -> None:
    path = tmp_path / "switchboard.yaml"
    path.write_text(PROVIDERS + body)
    os.chmod(path, mode)
    with caplog.at_level(logging.WARNING, logger="switchboard.config"):
        load_config(path, env={})
    messages = [r.getMessage() for r in caplog.records if r.name == "switchboard.config"]
    assert bool(messages) is warns
    if warns:
        assert "auth.clients[0].key" in messages[0] and "chmod 600" in messages[0]
        assert "sk-literal" not in messages[0]


def test_literal_provider_keys_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "providers:\n  p: {base_url: 'http://x/v1', keys: [sk-one, {key: '${K:-d}'}]}\n"
        "auth: {open: true}\n"
    )
    os.chmod(path, 0o640)
    with caplog.at_level(logging.WARNING, logger="switchboard.config"):
        load_config(path, env={})
    [record] = [r for r in caplog.records if r.name == "switchboard.config"]
    assert "providers.p.keys[0]" in record.getMessage()
    assert "keys[1]" not in record.getMessage()


def test_several_keys_per_client_with_expiry() -> None:
    text = PROVIDERS + (
        "auth:\n  clients:\n"
        "    - name: app\n      key:\n        - '${NEW}'\n"
        "        - {key: '${OLD}', expires: '2026-01-31T00:00:00Z'}\n"
        "    - name: ops\n      key_sha256: ['"
        + "a" * 64
        + "', {key_sha256: '"
        + "b" * 64
        + "'}]\n"
    )
    app, ops = parse_config(text, env={"NEW": "sk-new", "OLD": "sk-old"}).auth.clients
    assert [k.key_sha256 for k in app.keys] == [hash_key("sk-new"), hash_key("sk-old")]
    assert (app.keys[0].expires_unix, app.keys[1].expires_unix) == (None, 1769817600.0)
    assert [k.key_sha256 for k in ops.keys] == ["a" * 64, "b" * 64]
    assert app.key_sha256 == hash_key("sk-new")  # the first: a one-key client's key


@pytest.mark.parametrize(
    ("clients", "message"),
    [
        ([{"name": "a", "key": []}], "needs at least one key"),
        ([{"name": "a", "key": ["x", {"key": "y", "expires": "2026-01-31T00:00"}]}], "offset"),
        ([{"name": "a", "key": ["x", ""]}], r"key\[1\]: must be a non-empty"),
        ([{"name": "a", "key": ["x", "y"]}, {"name": "b", "key": ["z", "y"]}], "same key"),
    ],
)
def test_bad_key_lists(clients: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(auth={"clients": clients})


def test_literal_keys_in_a_list_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(PROVIDERS + "auth:\n  clients: [{name: a, key: ['${K:-d}', {key: sk-lit}]}]\n")
    os.chmod(path, 0o640)
    with caplog.at_level(logging.WARNING, logger="switchboard.config"):
        load_config(path, env={})
    [record] = [r for r in caplog.records if r.name == "switchboard.config"]
    assert "auth.clients[0].key[1]" in record.getMessage() and "key[0]" not in record.getMessage()


def test_keys_expiring_soon_are_warned_about_by_fingerprint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = 1769817600.0 - 3 * 86400  # three days before the first key's end
    clients = [
        {"name": "a", "key": [{"key": "sk-soon", "expires": "2026-01-31T00:00:00Z"}]},
        {"name": "b", "key": [{"key": "sk-later", "expires": "2026-03-31T00:00:00Z"}, "sk-b"]},
    ]
    auth_config = AuthConfig.model_validate({"clients": clients})
    with caplog.at_level(logging.WARNING, logger="switchboard.auth"):
        Authenticator(auth_config, clock=ManualClock(now))  # as at load, and at each reload
    [record] = [r for r in caplog.records if r.name == "switchboard.auth"]
    assert record.getMessage().startswith(f"client a: key {fingerprint('sk-soon')} expires in 72 h")
    assert "sk-soon" not in record.getMessage()
