"""Kind `vertex` with Vertex AI express mode API keys: told apart from service account keys and
access tokens at load (project and location then not needed; Claude, a regional location and a
pool of mixed keys refused), calls through the router to express mode's URLs with the key in
`x-goog-api-key` (unary, stream, the model list), failures classified, no embeddings, and the
key never in an error or a log line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import grpc
import pydantic
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.config import ProviderConfig, SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.setup import config_secrets
from tests.conformance.helpers import chat, params, stream, streamed_text
from tests.conftest import RouterHandle, StartRouter
from tests.vertex_keys import express_key, service_account

KEY_1, KEY_2 = express_key("one"), express_key("two")
GOOGLE_CLOUD_KEY = "AIzaSyFakeGoogleCloudApiKey000000000000"
MODEL_PATH = "/v1/publishers/google/models/gemini-2.5-flash"


def vertex(**settings: Any) -> ProviderConfig:
    return ProviderConfig.model_validate({"kind": "vertex", **settings})


@pytest.mark.parametrize("key", [KEY_1, GOOGLE_CLOUD_KEY])
def test_an_express_key_needs_no_project_or_location(key: str) -> None:
    config = vertex(keys=[key])

    assert config.vertex_express
    assert config.base_url == "https://aiplatform.googleapis.com"  # express mode's one endpoint
    assert vertex(keys=[key], location="global", project="acme-prod").vertex_express
    # An access token is no express key: its provider still needs a project.
    with pytest.raises(pydantic.ValidationError, match="needs project"):
        vertex(keys=["ya29.a0token"], location="global")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"location": "us-central1"}, "location: express mode API keys are served at the global"),
        ({"publisher": "anthropic"}, "publisher: Claude on Vertex AI needs a project"),
        (
            {"keys": [KEY_1, "ya29.token"]},
            r"keys\[1\]\.key: a vertex provider's keys are all express",
        ),
    ],
)
def test_what_express_keys_cannot_do_is_refused_at_load(
    settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=problem) as caught:
        vertex(**{"keys": [KEY_1], **settings})
    assert KEY_1 not in str(caught.value)


def test_a_pool_of_a_service_account_and_an_express_key_is_refused() -> None:
    account = service_account("sa").key_json("https://oauth2.googleapis.com/token")
    with pytest.raises(
        pydantic.ValidationError, match=r"keys\[1\]\.key: a vertex provider"
    ) as caught:
        vertex(keys=[account, KEY_1], project="acme-prod", location="global")
    assert KEY_1 not in str(caught.value) and "PRIVATE KEY" not in str(caught.value)


def test_an_express_key_read_from_a_file_is_among_the_secrets_the_logs_mask(
    tmp_path: Path,
) -> None:
    (tmp_path / "express.key").write_text(KEY_2 + "\n")
    providers = {"vx": {"kind": "vertex", "keys": [KEY_1, f"file:{tmp_path / 'express.key'}"]}}
    config = SwitchboardConfig.model_validate(
        {"providers": providers, "models": {}, "auth": {"open": True}}
    )

    assert config.providers["vx"].vertex_express
    assert {KEY_1, KEY_2} <= set(config_secrets(config))


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    providers = {
        "express": {"kind": "vertex", "base_url": fake.url, "keys": [KEY_1, KEY_2]},
        "backup": {"kind": "openai", "base_url": fake.base_url, "keys": ["k-backup"]},
    }
    models = {
        "flash": {"deployments": [{"provider": "express", "model": "gemini-2.5-flash"}]},
        "flash-then-openai": {
            "deployments": [
                {"provider": "express", "model": "gemini-2.5-flash"},
                {"provider": "backup", "model": "m-backup"},
            ]
        },
        "vectors": {
            "deployments": [
                {"provider": "express", "model": "text-embedding-005"},
                {"provider": "backup", "model": "e-backup"},
            ]
        },
    }
    return await start_router({"providers": providers, "models": models, "server": {"port": 0}})


async def test_a_completion_goes_to_express_modes_url_with_the_key_in_a_header(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    response = await chat(router, params("flash"))

    assert response.completion.choices[0].message.text == "Echo: hello there"
    record = fake.state.last()
    assert record is not None and record.path == f"{MODEL_PATH}:generateContent"
    assert record.headers["x-goog-api-key"] == KEY_1 and record.key == KEY_1
    assert "Authorization" not in record.headers
    assert record.query == {}  # never `?key=`: proxies log URLs
    assert fake.state.google.exchanges == []  # nothing exchanged for a token


async def test_a_stream_goes_to_stream_generate_content(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    events = await stream(router, params("flash", stream_options={"include_usage": True}))

    assert streamed_text(events) == "Echo: hello there"
    assert events[-1].summary.usage.total_tokens > 0
    record = fake.state.last()
    assert record is not None and record.path == f"{MODEL_PATH}:streamGenerateContent"
    assert record.query == {"alt": "sse"}
    assert record.headers["x-goog-api-key"] == KEY_1


@pytest.mark.parametrize(
    ("scenario", "outcome", "status"),
    [
        (Scenario(status=401), routing_pb2.OUTCOME_AUTH_INVALID, 401),
        (Scenario(status=403), routing_pb2.OUTCOME_AUTH_INVALID, 403),
        (Scenario.invalid_key(style="native"), routing_pb2.OUTCOME_AUTH_INVALID, 400),
        (Scenario.rate_limited(), routing_pb2.OUTCOME_RATE_LIMITED, 429),
    ],
    ids=["unauthenticated", "permission_denied", "api_key_invalid", "resource_exhausted"],
)
async def test_a_key_express_mode_refuses_is_set_aside_and_the_next_key_answers(
    router: RouterHandle, fake: FakeUpstream, scenario: Scenario, outcome: int, status: int
) -> None:
    fake.state.set_scenario(scenario, key=KEY_1)

    response = await chat(router, params("flash"))

    assert [(a.outcome, a.upstream_status) for a in response.route.attempts] == [
        (outcome, status),
        (routing_pb2.OUTCOME_OK, 200),
    ]
    assert [r.key for r in fake.state.calls()] == [KEY_1, KEY_2]


async def test_a_model_express_mode_does_not_serve_cools_the_deployment(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(status=404), model="gemini-2.5-flash")

    response = await chat(router, params("flash-then-openai"))

    assert response.route.deployment == "backup/m-backup"
    assert [a.outcome for a in response.route.attempts] == [
        routing_pb2.OUTCOME_UPSTREAM_ERROR,
        routing_pb2.OUTCOME_OK,
    ]


async def test_express_mode_has_no_embeddings_the_next_deployment_embeds(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    embed = embeddings_pb2.EmbeddingParams(model="vectors", text="alpha")

    response = await router.stub.Embed(pb.EmbedRequest(params=embed))

    assert response.route.deployment == "backup/e-backup"
    assert response.route.attempts[0].outcome == routing_pb2.OUTCOME_UNSUPPORTED_INPUT
    assert [r.path for r in fake.state.calls()] == ["/v1/embeddings"]


async def test_the_probe_lists_the_models_with_the_key(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    assert await router.runtime.adapters["express"].list_models(KEY_2, 5.0) == fake.state.models

    record = fake.state.last()
    assert record is not None and record.path == "/v1beta1/publishers/google/models"
    assert record.headers["x-goog-api-key"] == KEY_2


async def test_the_caller_hears_a_refusal_without_the_key(
    router: RouterHandle, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.state.set_scenario(Scenario.invalid_key(style="native"))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("flash"))

    details = details_from_rpc_error(caught.value)
    assert (details.reason, details.upstream_status) == ("AUTH_INVALID", 400)
    for key in (KEY_1, KEY_2):
        assert key not in str(caught.value.details())
        assert key not in caught.value.debug_error_string()
        assert key not in caplog.text
