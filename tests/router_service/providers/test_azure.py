"""Kind `azure`: its setting checked at load, its requests on the wire (the deployment in the
path, the `api-version` query, the key in `api-key`), and Azure's stream annotations folded into
what an OpenAI stream is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from clients import chunk_from_openai, chunk_to_openai
from clients.switchboard.v1 import embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.cli import main
from router_service.clock import SYSTEM_CLOCK
from router_service.config import ProviderConfig
from router_service.fake_upstream import FakeUpstream
from router_service.outcomes import Outcome, Scope
from router_service.providers import AzureOpenAIAdapter
from router_service.providers._azure import DEFAULT_API_VERSION, StreamAnnotations
from router_service.telemetry._attributes import provider_name
from tests.conformance.helpers import chat, params, stream, streamed_text
from tests.conftest import StartRouter

ROOT = Path(__file__).resolve().parents[3]
ENDPOINT = "https://contoso.openai.azure.com"
RAI = "ResponsibleAIPolicyViolation"


def azure_config(fake: FakeUpstream, **provider: Any) -> dict[str, Any]:
    return {
        "providers": {
            "az": {"kind": "azure", "base_url": fake.url, "keys": ["az-key-1"], **provider}
        },
        "models": {
            "chat": {"deployments": [{"provider": "az", "model": "gpt-4o-prod"}]},
            "vectors": {"deployments": [{"provider": "az", "model": "embed small"}]},
        },
        "server": {"port": 0},
    }


@pytest.mark.parametrize("version", ["2024-10-21", "2025-04-01-preview"])
def test_api_versions_azure_has(version: str) -> None:
    config = ProviderConfig(kind="azure", base_url=ENDPOINT, api_version=version, keys=["k"])  # type: ignore[list-item]
    assert config.api_version == version


@pytest.mark.parametrize(
    "version", ["2024-13-01", "2024-10-21-beta", "latest", "v1", "2024-1-21", " 2024-10-21"]
)
def test_an_api_version_azure_has_not_is_refused_at_load(version: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="not an Azure OpenAI api-version"):
        ProviderConfig(kind="azure", base_url=ENDPOINT, api_version=version, keys=["k"])  # type: ignore[list-item]


def test_check_config_passes_the_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AZURE_EASTUS_KEY_1", "AZURE_EASTUS_KEY_2", "AZURE_SWEDEN_KEY", "MY_APP_KEY"):
        monkeypatch.setenv(name, f"secret-{name.lower()}")
    monkeypatch.setenv("AZURE_EASTUS_RESOURCE", "contoso-eastus")
    monkeypatch.setenv("AZURE_SWEDEN_RESOURCE", "contoso-sweden")
    example = str(ROOT / "examples" / "azure.yaml")

    assert main(["check-config", example]) == 0
    assert "OK — 2 provider(s), model groups: chat, embeddings" in capsys.readouterr().out


def test_check_config_names_a_bad_api_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "azure.yaml"
    path.write_text(
        "providers:\n  az:\n    kind: azure\n    base_url: https://contoso.openai.azure.com\n"
        '    api_version: "2024-10-21-beta"\n    keys: [az-secret-key]\n'
        "models:\n  chat:\n    deployments: [{provider: az, model: gpt-4o}]\nauth: {open: true}\n"
    )
    assert main(["check-config", str(path)]) == 2
    error = capsys.readouterr().err
    assert f"{path}:5: providers.az.api_version:" in error
    assert "'2024-10-21-beta' is not an Azure OpenAI api-version" in error
    assert "az-secret-key" not in error


async def test_requests_on_the_wire(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(azure_config(fake, api_version="2025-04-01-preview"))

    answer = await chat(router, params("chat"))
    events = await stream(router, params("chat", text="once more"))
    embedded = await router.stub.Embed(
        pb.EmbedRequest(
            params=embeddings_pb2.EmbeddingParams(
                model="vectors", texts=embeddings_pb2.TextList(values=["a"])
            )
        )
    )

    assert answer.completion.choices[0].message.text == "Echo: hello there"
    assert streamed_text(events) == "Echo: once more"
    assert len(embedded.result.data) == 1
    calls = fake.state.calls()
    assert [c.path for c in calls] == [
        "/openai/deployments/gpt-4o-prod/chat/completions",
        "/openai/deployments/gpt-4o-prod/chat/completions",
        "/openai/deployments/embed small/embeddings",  # quoted on the wire: one segment
    ]
    assert calls[2].model == "embed small"
    for call in calls:
        assert call.query == {"api-version": "2025-04-01-preview"}
        headers = {name.lower(): value for name, value in call.headers.items()}
        assert headers["api-key"] == "az-key-1"
        assert "authorization" not in headers
    assert calls[1].stream and calls[1].body["stream"] is True


async def test_api_version_defaults_to_the_latest_ga(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(azure_config(fake))
    adapter = router.runtime.adapters["az"]

    assert await adapter.list_models("az-key-1", 5.0) == fake.state.models
    record = fake.state.last()
    assert record is not None
    assert (record.path, record.query) == ("/openai/models", {"api-version": "2024-10-21"})
    assert DEFAULT_API_VERSION == "2024-10-21"


@pytest.mark.parametrize(
    ("version", "sent"),
    [
        ("2024-06-01", None),  # GA before stream_options: Azure refuses a body that has them
        ("2024-07-01-preview", None),
        ("2024-08-01-preview", {"include_usage": True}),
        ("2024-10-21", {"include_usage": True}),
    ],
)
async def test_streams_ask_for_usage_only_on_api_versions_that_take_stream_options(
    fake: FakeUpstream, start_router: StartRouter, version: str, sent: dict[str, Any] | None
) -> None:
    router = await start_router(azure_config(fake, api_version=version))

    events = await stream(router, params("chat", text="once more"))

    assert streamed_text(events) == "Echo: once more"
    [call] = fake.state.calls()
    assert call.body.get("stream_options") == sent


# Azure's own chunks (content-filter concepts page; asynchronous filter mode).
OPENING = {
    "choices": [],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
}
ROLE = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1704212243,
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
}
ASYNC_FILTER = {
    "choices": [
        {
            "index": 0,
            "finish_reason": None,
            "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 7},
            "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}},
        }
    ],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
}


def test_the_opening_annotation_rides_on_the_first_chunk() -> None:
    annotations = StreamAnnotations()

    assert annotations.fold(chunk_from_openai(OPENING)) is None
    first = annotations.fold(chunk_from_openai(ROLE))

    assert first is not None
    relayed = chunk_to_openai(first)
    assert relayed["id"] == "chatcmpl-1"
    assert relayed["choices"][0]["delta"]["role"] == "assistant"
    assert relayed["prompt_filter_results"] == OPENING["prompt_filter_results"]


def test_a_later_annotation_gets_the_streams_envelope_and_a_delta() -> None:
    annotations = StreamAnnotations()
    annotations.fold(chunk_from_openai(OPENING))
    annotations.fold(chunk_from_openai(ROLE))

    folded = annotations.fold(chunk_from_openai(ASYNC_FILTER))

    assert folded is not None
    relayed = chunk_to_openai(folded)
    assert (relayed["id"], relayed["model"], relayed["created"]) == (
        "chatcmpl-1",
        "gpt-4o-2024-08-06",
        1704212243,
    )
    choice = relayed["choices"][0]
    assert choice["delta"] == {}
    assert choice["content_filter_offsets"]["end_offset"] == 7
    assert "prompt_filter_results" not in relayed  # given once, on the first chunk


@pytest.fixture
async def adapter() -> AsyncIterator[AzureOpenAIAdapter]:
    config = ProviderConfig(kind="azure", base_url=ENDPOINT, keys=["k"])  # type: ignore[list-item]
    async with httpx.AsyncClient() as http:
        yield AzureOpenAIAdapter("az", config, http, SYSTEM_CLOCK)


@pytest.mark.parametrize(
    ("status", "error", "outcome", "scope"),
    [
        (
            404,
            {"code": "DeploymentNotFound", "message": "The API deployment for this resource …"},
            Outcome.UPSTREAM_ERROR,
            Scope.DEPLOYMENT,
        ),
        # The policy's verdict decides, whatever the outer code says.
        (
            400,
            {"code": "400", "message": "Blocked.", "innererror": {"code": RAI}},
            Outcome.CONTENT_FILTERED,
            Scope.NONE,
        ),
        (
            400,
            {"code": "content_filter", "message": "…", "status": 400, "innererror": {"code": RAI}},
            Outcome.CONTENT_FILTERED,
            Scope.NONE,
        ),
        (
            401,
            {"code": "401", "message": "Access denied due to invalid …"},
            Outcome.AUTH_INVALID,
            Scope.KEY,
        ),
        # Another 404 (a path or api-version Azure does not have) is no missing deployment.
        (404, {"code": "404", "message": "Resource not found"}, Outcome.BAD_REQUEST, Scope.NONE),
    ],
    ids=["deployment_not_found", "policy_inner_code", "content_filter", "auth", "not_found"],
)
def test_azures_errors_are_classified(
    adapter: AzureOpenAIAdapter,
    status: int,
    error: dict[str, Any],
    outcome: Outcome,
    scope: Scope,
) -> None:
    failure = adapter._failure(status, error, {})
    assert (failure.outcome, failure.scope, failure.upstream_status) == (outcome, scope, status)
    assert failure.upstream_error == error


@pytest.mark.parametrize(
    "base_url",
    [f"{ENDPOINT}/openai", f"{ENDPOINT}/openai/v1", f"{ENDPOINT}/openai/deployments/gpt-4o"],
)
def test_a_base_url_with_the_api_path_is_refused_at_load(base_url: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="without /openai/…; for Azure's"):
        ProviderConfig(kind="azure", base_url=base_url, keys=["k"])  # type: ignore[list-item]


def test_spans_name_the_provider_as_the_genai_conventions_do() -> None:
    assert provider_name("azure") == "azure.ai.openai"  # gen_ai.provider.name's Azure value
