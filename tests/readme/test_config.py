"""The README's configuration, as the config loader (`switchboard check-config`'s) reads it:
every ```yaml block, every inline `section.setting: value`, and every `section.setting` named in
its prose exist in the schema. A setting renamed or removed in the code fails here until the
README follows."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from router_service.config import SwitchboardConfig, load_config, load_edge_config
from router_service.errors import ConfigError
from router_service.fake_upstream import FakeUpstreamState
from router_service.fake_upstream._scenario import load_rules_file
from tests.readme.markdown import Snippet, blocks, line_of, prose, spans

SECTIONS = tuple(SwitchboardConfig.model_fields)

# What a fragment (a block that tunes a part of the file) is merged onto: the providers the
# README's fragments name or route to, one model group, one caller.
# Priced: a fragment's money budget needs a price somewhere (config validation says so).
_UPSTREAM = {
    "base_url": "https://upstream.example/v1",
    "keys": ["${BASE_PROVIDER_KEY}"],
    "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
}
BASE: dict[str, Any] = {
    "providers": {name: _UPSTREAM for name in ("openai", "anthropic", "groq")},
    "models": {"base-group": {"deployments": [{"provider": "openai", "model": "base-model"}]}},
    "auth": {"clients": [{"name": "base-client", "key": "${BASE_CLIENT_KEY}"}]},
}
# A `${VAR}` is set to a dummy value; these few must have a shape their setting checks.
SHAPED_ENV = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",  # state.url: a redis:// URL
    # An azure key that is an Entra ID service principal: its JSON is checked at load.
    "AZURE_SP_JSON": '{"tenant_id": "contoso.onmicrosoft.com", "client_id": "0b7d8e2c", '
    '"client_secret": "dummy-secret"}',
    # Azure's identities: a user-assigned identity's client id is a GUID, a workload identity's
    # tenant a tenant id or domain, its token file one the loader can read (any will do).
    "AZURE_MI_CLIENT_ID": "5e29463d-71da-4fe0-8e69-999b57db23b0",
    "AZURE_TENANT_ID": "contoso.onmicrosoft.com",
    "AZURE_FEDERATED_TOKEN_FILE": str(Path(__file__).resolve()),
    "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
    "IDENTITY_ENDPOINT": "http://localhost:42356/msi/token",
    # The access key id of a bedrock IAM key: 16 to 128 letters and digits.
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "ROLE_ACCESS_KEY_ID": "ASIAIOSFODNN7EXAMPLE",
    # Vertex AI express mode API keys: told from access tokens by how they begin.
    "VERTEX_EXPRESS_KEY": "AQ.dummy-express-key",
    "VERTEX_EXPRESS_KEY_1": "AQ.dummy-express-key-1",
    "VERTEX_EXPRESS_KEY_2": "AIzaDummyExpressKey2",
}
_VAR = re.compile(r"\$\{([A-Za-z_]\w*)")

# Dotted names in code spans that start like a config section but are something else.
NOT_SETTINGS = {
    "http.server.request.duration": "the edge's OpenTelemetry HTTP server metric",
    "http.request.method": "an OpenTelemetry span attribute (HTTP semantic conventions)",
    "http.request.header.x": "`http.request.header.x-request-id`, an OpenTelemetry span attribute",
    "http.response.status_code": "an OpenTelemetry span attribute (HTTP semantic conventions)",
    "routing.session_id": "the gRPC request's RoutingOptions field, not the routing: section",
    "server.address": "an OpenTelemetry span attribute (GenAI semantic conventions)",
}
_SECTION = "|".join(SECTIONS)
_PART = r"\.(?:<\w+>|[\w\[\]]+)"  # `.timeouts`, `.keys[0]`, `.<name>` (any provider)
_DOTTED = re.compile(rf"(?<![\w.])(?:{_SECTION})(?:{_PART})+")
# A setting and its value: a flow mapping or list, or one word (`edge: router TLS files
# reloaded`, a log line, is not one).
_INLINE = re.compile(rf"^(?:{_SECTION})(?:{_PART})*: (?:\{{.*\}}|\[.*\]|\S+)$")


def merged(base: Any, over: Any) -> Any:
    """`over` on `base`: mappings merge key by key, anything else (a list too) replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in over.items()}}
    return over


def is_full(data: dict[str, Any]) -> bool:
    """A whole file: it defines its providers (each with its `base_url`), rather than tuning
    providers defined elsewhere."""
    providers = data.get("providers")
    return isinstance(providers, dict) and all("base_url" in p for p in providers.values())


def on_base(fragment: dict[str, Any]) -> dict[str, Any]:
    """A fragment merged onto BASE; a provider it introduces without defining gets BASE's
    upstream (its own settings, misspelt ones too, still go through the schema)."""
    providers = {
        name: merged(_UPSTREAM, settings) if name not in BASE["providers"] else settings
        for name, settings in (fragment.get("providers") or {}).items()
    }
    config: dict[str, Any] = merged(
        BASE, {**fragment, **({"providers": providers} if providers else {})}
    )
    return config


def load(
    text_or_data: str | dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> SwitchboardConfig:
    """Through the loader `switchboard check-config` runs, from a file, with every `${VAR}` the
    text names set."""
    text = text_or_data if isinstance(text_or_data, str) else yaml.safe_dump(text_or_data)
    for name in _VAR.findall(text):
        monkeypatch.setenv(name, SHAPED_ENV.get(name, f"dummy-{name.lower()}"))
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


# Blocks that are neither Switchboard config nor a fake-upstream scenarios file (a Kubernetes or
# Prometheus snippet), by their first line, with the reason nothing here reads them. None today.
NOT_CONFIG: dict[str, str] = {}


@pytest.mark.parametrize("block", blocks("yaml"), ids=lambda b: b.where)
def test_yaml_block_loads(block: Snippet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.text.splitlines()[0] in NOT_CONFIG:
        return
    data = yaml.safe_load(block.text)
    if isinstance(data, list) or (isinstance(data, dict) and "scenarios" in data):
        # A fake-upstream scenarios file, read as `switchboard fake-upstream --scenarios` does.
        path = tmp_path / "scenarios.yaml"
        path.write_text(block.text, encoding="utf-8")
        FakeUpstreamState().load_rules(load_rules_file(path))
        return
    assert isinstance(data, dict), f"{block.where}: neither a config nor a scenarios file"
    unknown = sorted(set(data) - set(SECTIONS))
    assert not unknown, f"{block.where}: not config sections: {unknown} (else: NOT_CONFIG)"
    load(block.text if is_full(data) else on_base(data), tmp_path, monkeypatch)


def inline_settings() -> list[Snippet]:
    """`server: {reload_poll_s: 5}`, `edge.cors_origins: [...]`: settings with their values."""
    return [span for span in spans() if _INLINE.match(span.text)]


@pytest.mark.parametrize("span", inline_settings(), ids=lambda s: f"{s.where} {s.text}")
def test_inline_setting_loads(
    span: Snippet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotted, _, value = span.text.partition(": ")
    fragment: Any = yaml.safe_load(value)
    for part in reversed(dotted.split(".")):
        fragment = {part: fragment}
    load(on_base(fragment), tmp_path, monkeypatch)


def named_settings() -> list[tuple[str, Snippet]]:
    return [
        (name, span)
        for span in spans()
        for name in _DOTTED.findall(span.text)
        if name not in NOT_SETTINGS
    ]


@pytest.mark.parametrize(
    ("name", "span"), named_settings(), ids=lambda x: x if isinstance(x, str) else x.where
)
def test_named_setting_exists(name: str, span: Snippet) -> None:
    assert setting_exists(name), f"{span.where}: `{name}` is no setting of the config schema"


# "`server.shutdown_grace_s` (default 30 s)", "`edge.max_body_bytes` (4 MiB)": a default.
_DEFAULT = re.compile(
    rf"`((?:{_SECTION})(?:{_PART})+)`\s*\((?:default )?(?P<value>\d[\d.]*\d|\d)(?P<unit> MiB| s)?\b"
)
_UNITS = {"": 1, "s": 1, "MiB": 1024 * 1024}


def stated_defaults() -> list[tuple[str, str, int]]:
    text = prose()
    return [
        (m[1], m["value"] + (m["unit"] or ""), line_of(text, m.start()))
        for m in _DEFAULT.finditer(text)
    ]


@pytest.mark.parametrize(("name", "stated", "line"), stated_defaults())
def test_stated_default_is_the_default(name: str, stated: str, line: int) -> None:
    default: Any = SwitchboardConfig.model_validate(BASE)
    for part in name.split("."):
        default = getattr(default, part)
    value, _, unit = stated.partition(" ")
    # A number in its unit, or an address (`127.0.0.1`) as it is.
    expected = value if value.count(".") > 1 else float(value) * _UNITS[unit]
    assert default == expected, f"README.md:{line}: `{name}` defaults to {default!r}, not {stated}"


def setting_exists(dotted: str) -> bool:
    """Whether `providers.openai.keys[0].key`-style `dotted` names a setting of the schema; a
    part under a mapping of names (a provider, a model group) may be any name."""
    annotation: Any = SwitchboardConfig
    for part in dotted.split("."):
        name, bracket, _ = part.partition("[")
        annotation = _unwrapped(annotation)
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if name not in annotation.model_fields:
                return False
            annotation = annotation.model_fields[name].annotation
        else:
            return False
        if bracket:  # an item of a list
            annotation = _unwrapped(annotation)
            if get_origin(annotation) is not list:
                return False
            annotation = get_args(annotation)[0]
    return True


def _unwrapped(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` as X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
        else:
            return annotation


def test_the_checks_catch_a_wrong_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the tests above rely on: a misspelt setting in a fragment, or a name the schema
    lacks, fails."""
    with pytest.raises(Exception, match="body_timout_s"):
        load(on_base({"edge": {"body_timout_s": 30}}), tmp_path, monkeypatch)
    assert not setting_exists("edge.body_timout_s")
    assert not setting_exists("providers.openai.keys[0].secret")
    assert setting_exists("providers.openai.keys[0].key")


def test_the_router_needs_the_edges_variables_the_edge_not_the_routers(tmp_path: Path) -> None:
    """What the README says of one file shared by both: the edge reads its own sections only,
    the router the whole file, `edge:`'s `${VAR}`s included; an edge's file of its own keeps
    its secrets from the router."""
    shared = tmp_path / "shared.yaml"
    shared.write_text(yaml.safe_dump({**BASE, "edge": {"admin_token": "${EDGE_ADMIN_TOKEN}"}}))
    routers = {"BASE_PROVIDER_KEY": "sk-provider", "BASE_CLIENT_KEY": "sk-client"}
    with pytest.raises(ConfigError, match=r"edge\.admin_token: environment variable"):
        load_config(shared, env=routers)
    edge = load_edge_config(shared, env={"EDGE_ADMIN_TOKEN": "sk-edge-admin"})
    assert edge.edge.admin_token is not None
    own = tmp_path / "edge.yaml"
    own.write_text(yaml.safe_dump({"edge": {"admin_token": "${EDGE_ADMIN_TOKEN}"}}))
    assert load_edge_config(own, env={"EDGE_ADMIN_TOKEN": "sk-edge-admin"}).edge.admin_token
