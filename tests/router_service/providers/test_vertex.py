"""Kind `vertex`: its settings and keys checked at load, the URLs and bodies it sends (regional
and global endpoints, Gemini's and Claude's methods, embeddings by `:predict`), and that a
router without a service account key never imports `cryptography`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pydantic
import pytest

from clients import chat_params_from_openai
from clients.switchboard.v1 import embeddings_pb2
from router_service.cli import main
from router_service.clock import SYSTEM_CLOCK
from router_service.config import ProviderConfig
from router_service.config._secrets import literal_secrets
from router_service.providers import ChatCall, EmbedCall, VertexAdapter
from router_service.telemetry._attributes import provider_name
from tests.vertex_keys import service_account

ROOT = Path(__file__).resolve().parents[3]
Handler = Callable[[httpx.Request], httpx.Response]
GEMINI_ANSWER = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}
    ],
    "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1, "totalTokenCount": 3},
}
CLAUDE_ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5@20250929",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 2, "output_tokens": 1},
}


def vertex(**settings: Any) -> ProviderConfig:
    return ProviderConfig.model_validate({"kind": "vertex", "keys": ["ya29.token"], **settings})


def adapter(
    config: ProviderConfig, answer: dict[str, Any], seen: list[httpx.Request]
) -> VertexAdapter:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "alt=sse" in str(request.url):  # Gemini's stream: one response per event
            sse = b"data: " + orjson.dumps(answer) + b"\n\n"
            return httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=answer)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return VertexAdapter("vx", config, http, SYSTEM_CLOCK)


def call(model: str) -> ChatCall:
    params, _ = chat_params_from_openai(
        {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
    )
    return ChatCall(upstream_model=model, api_key="ya29.token", params=params, timeout_s=5.0)


@pytest.mark.parametrize(
    ("location", "endpoint"),
    [
        ("us-central1", "https://us-central1-aiplatform.googleapis.com"),
        ("europe-west4", "https://europe-west4-aiplatform.googleapis.com"),
        ("global", "https://aiplatform.googleapis.com"),
    ],
)
async def test_gemini_urls_follow_the_location(location: str, endpoint: str) -> None:
    seen: list[httpx.Request] = []
    config = vertex(project="acme-prod", location=location)
    vx = adapter(config, GEMINI_ANSWER, seen)

    completion = await vx.chat(call("gemini-2.5-flash"))

    assert completion.choices[0].message.text == "hi"
    models = f"{endpoint}/v1/projects/acme-prod/locations/{location}/publishers/google/models"
    assert str(seen[0].url) == f"{models}/gemini-2.5-flash:generateContent"
    assert seen[0].headers["authorization"] == "Bearer ya29.token"
    assert "x-goog-api-key" not in seen[0].headers
    assert "contents" in orjson.loads(seen[0].content)


async def test_a_stream_uses_stream_generate_content_with_sse() -> None:
    seen: list[httpx.Request] = []
    vx = adapter(vertex(project="acme-prod", location="us-east5"), GEMINI_ANSWER, seen)

    async with vx.stream_chat(call("gemini-2.5-pro")) as chunks:
        texts = [c.choices[0].delta.text async for c in chunks if c.choices]

    assert "hi" in texts
    assert str(seen[0].url) == (
        "https://us-east5-aiplatform.googleapis.com/v1/projects/acme-prod/locations/us-east5"
        "/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    )


@pytest.mark.parametrize(("stream", "method"), [(False, "rawPredict"), (True, "streamRawPredict")])
async def test_claude_goes_to_raw_predict_without_model_in_the_body(
    stream: bool, method: str
) -> None:
    seen: list[httpx.Request] = []
    config = vertex(project="acme-prod", location="global", publisher="anthropic")
    vx = adapter(config, CLAUDE_ANSWER, seen)

    if stream:
        async with vx.stream_chat(call("claude-sonnet-4-5@20250929")):
            pass  # opened: what was sent is what this test reads
    else:
        await vx.chat(call("claude-sonnet-4-5@20250929"))

    assert str(seen[0].url) == (
        "https://aiplatform.googleapis.com/v1/projects/acme-prod/locations/global"
        f"/publishers/anthropic/models/claude-sonnet-4-5@20250929:{method}"
    )
    assert vx.refuses_blank_stops  # Claude's rule, as at Anthropic: the router enforces those
    assert not adapter(vertex(project="acme-prod", location="global"), {}, []).refuses_blank_stops
    body = orjson.loads(seen[0].content)
    assert "model" not in body and body["anthropic_version"] == "vertex-2023-10-16"
    assert body["max_tokens"] == 4096 and body.get("stream", False) is stream
    assert "anthropic-version" not in seen[0].headers


async def test_embeddings_are_predict_instances() -> None:
    seen: list[httpx.Request] = []
    answer = {
        "predictions": [
            {"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": 3}}},
            {"embeddings": {"values": [0.3, 0.4], "statistics": {"token_count": 2}}},
        ]
    }
    vx = adapter(vertex(project="acme-prod", location="us-central1"), answer, seen)
    params = embeddings_pb2.EmbeddingParams(model="x", dimensions=2)
    params.texts.values.extend(["alpha beta", "gamma"])

    result = await vx.embed(EmbedCall("text-embedding-005", "ya29.token", params, 5.0))

    assert str(seen[0].url).endswith("/publishers/google/models/text-embedding-005:predict")
    assert orjson.loads(seen[0].content) == {
        "instances": [{"content": "alpha beta"}, {"content": "gamma"}],
        "parameters": {"outputDimensionality": 2},
    }
    assert [list(e.values) for e in result.data] == [
        pytest.approx([0.1, 0.2]),
        pytest.approx([0.3, 0.4]),
    ]
    assert result.usage.prompt_tokens == 5


def test_base_url_overrides_the_location_endpoint() -> None:
    config = vertex(project="acme-prod", location="us-central1", base_url="http://127.0.0.1:9/")
    assert config.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"location": "us-central1"}, "project: a vertex provider needs project"),
        ({"project": "acme-prod"}, "location: a vertex provider needs location"),
        ({"project": "Acme Prod", "location": "us-central1"}, "is not a Google Cloud project id"),
        ({"project": "acme-prod", "location": "US Central"}, "is not a Vertex AI location"),
    ],
)
def test_project_and_location_are_checked_at_load(settings: dict[str, str], problem: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=problem):
        vertex(**settings)


def sa_json(**changes: Any) -> str:
    data = orjson.loads(service_account("cfg").key_json("https://oauth2.googleapis.com/token"))
    return orjson.dumps({**data, **changes}).decode()


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ('{"type": "authorized_user"}', "not a service account key"),
        ("{not json", "must be valid JSON"),
        (sa_json(client_email=""), "has no client_email"),
        (
            sa_json(private_key="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"),
            "not a PEM private key",
        ),
        ("file:/nonexistent/key.json", "cannot read the service account key file"),
    ],
)
def test_a_broken_service_account_key_is_refused_by_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, problem: str
) -> None:
    path = tmp_path / "switchboard.yaml"
    config = {
        "providers": {
            "vx": {"kind": "vertex", "project": "acme-prod", "location": "global", "keys": [key]}
        },
        "models": {"g": {"deployments": [{"provider": "vx", "model": "gemini-2.5-flash"}]}},
        "auth": {"open": True},
    }
    path.write_text(orjson.dumps(config).decode())
    path.chmod(0o600)

    assert main(["check-config", str(path)]) != 0

    out = capsys.readouterr()
    assert "providers.vx.keys[0].key" in out.err + out.out
    assert problem in out.err + out.out
    assert "BEGIN PRIVATE KEY" not in out.err + out.out and "nope" not in out.err + out.out


def test_a_key_file_is_read_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "sa.json").write_text(sa_json())
    path = tmp_path / "switchboard.yaml"
    path.write_text(
        "providers:\n  vx:\n    kind: vertex\n    project: acme-prod\n    location: global\n"
        "    keys: ['file:sa.json']\n"
        "models:\n  g: {deployments: [{provider: vx, model: gemini-2.5-flash}]}\n"
        "auth: {open: true}\n"
    )
    path.chmod(0o644)

    assert main(["check-config", str(path)]) == 0
    # Where the key is, not the key: no warning that the (world-readable) file holds secrets.
    assert (
        literal_secrets({"providers": {"vx": {"kind": "vertex", "keys": ["file:sa.json"]}}}) == []
    )


def test_a_service_accounts_private_key_is_among_the_secrets_the_logs_mask(
    tmp_path: Path,
) -> None:
    # Read from a file it is in no configured string; pasted as JSON it is inside one, not
    # alone (a message quoting the PEM would not contain the whole JSON).
    (tmp_path / "sa.json").write_text(sa_json())
    private_key = orjson.loads(sa_json())["private_key"]
    for key in (f"file:{tmp_path / 'sa.json'}", sa_json()):
        provider = ProviderConfig.model_validate(
            {"kind": "vertex", "project": "acme-prod", "location": "global", "keys": [key]}
        )
        assert private_key in provider.secrets()


def test_without_cryptography_a_service_account_key_is_a_clear_config_error() -> None:
    script = (
        "import sys\n"
        "sys.modules['cryptography'] = None\n"  # as if the extra were not installed
        "import pydantic\n"
        "from router_service.config import ProviderConfig\n"
        f"key = {sa_json()!r}\n"
        "try:\n"
        "    ProviderConfig.model_validate({'kind': 'vertex', 'project': 'acme-prod', "
        "'location': 'global', 'keys': [key]})\n"
        "except pydantic.ValidationError as exc:\n"
        "    print(exc.errors()[0]['msg'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "pip install 'switchboard[vertex]'" in out.stdout


def test_cryptography_is_imported_only_for_a_service_account_key() -> None:
    script = (
        "import sys\n"
        "from router_service.config import ProviderConfig\n"
        "import router_service.providers, router_service.runtime\n"
        "ProviderConfig.model_validate({'kind': 'vertex', 'project': 'acme-prod', "
        "'location': 'global', 'keys': ['ya29.token']})\n"
        "print('cryptography' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_check_config_passes_the_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VERTEX_SA_JSON", sa_json())
    monkeypatch.setenv("MY_APP_KEY", "secret-my-app-key")

    assert main(["check-config", str(ROOT / "examples" / "vertex.yaml")]) == 0
    assert "OK — 3 provider(s), model groups: chat, embeddings" in capsys.readouterr().out


def test_spans_name_the_provider_by_gen_ai_s_value() -> None:
    assert provider_name("vertex") == "gcp.vertex_ai"


async def test_claude_on_vertex_runs_web_search_its_beta_flags_in_the_body() -> None:
    seen: list[httpx.Request] = []
    config = vertex(project="acme-prod", location="global", publisher="anthropic")
    vx = adapter(config, CLAUDE_ANSWER, seen)
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    params, _ = chat_params_from_openai(
        {
            "model": "x",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [search],
            "anthropic_beta": ["web-search-2025-03-05"],
        }
    )

    await vx.chat(ChatCall("claude-sonnet-4-5@20250929", "ya29.token", params, 5.0))

    body = orjson.loads(seen[0].content)
    assert body["tools"] == [search] and body["anthropic_beta"] == ["web-search-2025-03-05"]
    assert "anthropic-beta" not in seen[0].headers
    # Web search, not web fetch (Anthropic's API alone runs it); Gemini on Vertex, neither.
    assert vx.server_tools == frozenset({"web_search"})
    assert (
        adapter(vertex(project="acme-prod", location="global"), {}, []).server_tools == frozenset()
    )
