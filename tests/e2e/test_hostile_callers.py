"""What one caller must not be able to do to the others or to the provider keys, through the edge
(real router, real edge, the fake upstream). Found by the security audit of 2026-12."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import orjson
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry import config_secrets
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_auth_sdk import StartEdge

KEYS = ["sk-alpha-1", "sk-alpha-2"]


def two_models(fake_url: str) -> dict[str, Any]:
    """One provider with two keys serving two groups, so that one group's trouble shows on the
    other's."""
    return {
        "providers": {"alpha": {"base_url": fake_url, "keys": KEYS}},
        "models": {
            "a": {"deployments": [{"provider": "alpha", "model": "model-a"}]},
            "b": {"deployments": [{"provider": "alpha", "model": "model-b"}]},
        },
        "server": {"port": 0},
    }


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


async def key_states(router: RouterHandle) -> list[int]:
    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest())
    return [key.state for key in listed.keys]


async def deployment_cooling(router: RouterHandle, name: str) -> bool:
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    return any(d.deployment == name and d.cooldown_until_unix > 0 for d in stats.deployments)


# The upstream's 400 quotes the unknown field the caller passed through, as OpenAI does
# ("Unrecognized request argument supplied: <name>"); the field's name is what the router's
# text patterns take for the provider's verdict on the key or on itself.
@pytest.mark.parametrize(
    ("field", "stream", "verdict"),
    [
        ("invalid_api_key", False, "auth: both keys disabled for a day"),
        ("invalid_api_key", True, "auth, from a stream's opening"),
        ("billing", False, "quota: both keys disabled for an hour"),
        ("server_error", False, "transient: the deployment cooled for everyone"),
    ],
)
async def test_a_field_the_upstream_echoes_is_no_verdict_on_keys(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    field: str,
    stream: bool,
    verdict: str,
) -> None:
    router = await start_router(two_models(fake.base_url))
    edge = await start_edge(router)
    echo = {
        "error": {
            "message": f"Unrecognized request argument supplied: {field}",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    fake.state.set_scenario(Scenario(status=400, error_body=echo), model="model-b")

    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        refused = await http.post(
            "/v1/chat/completions", json=chat("b", stream=stream, **{field: True})
        )
        # Another caller, another model of the same provider, right after.
        served = await http.post("/v1/chat/completions", json=chat("a"))

    assert refused.status_code == 400, verdict  # the caller's fault, in the upstream's words
    assert refused.json()["error"]["message"] == echo["error"]["message"]
    assert fake.state.count(model="model-b") == 1  # not retried on the other key
    assert served.status_code == 200
    assert await key_states(router) == [admin_pb.KEY_STATE_ACTIVE] * 2
    assert not await deployment_cooling(router, "alpha/model-b")


async def test_the_same_words_from_the_upstream_alone_still_disable_the_key(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The control: a 400 whose message says the key is invalid, when the caller did not send
    those words, disables the key (README, Key pools: "400 … saying the key is invalid")."""
    router = await start_router(two_models(fake.base_url))
    edge = await start_edge(router)
    said = {"error": {"message": "Invalid API key", "type": "invalid_request_error"}}
    fake.state.set_scenario(Scenario(status=400, error_body=said), key="sk-alpha-1")

    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        for _ in range(2):
            served = await http.post("/v1/chat/completions", json=chat("b"))
            assert served.status_code == 200

    assert fake.state.count(key="sk-alpha-1") == 1
    assert await key_states(router) == [admin_pb.KEY_STATE_DISABLED, admin_pb.KEY_STATE_ACTIVE]


PORTKEY = "pk-header-secret-0123456789"
GATEWAY = "cf-gateway-token-0123456789"


async def test_credential_headers_and_masked_keys_never_reach_the_caller(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Keys were scrubbed from upstream errors, but not the provider's credential headers
    (`headers:`, e.g. an AI gateway's token), nor a key the upstream masked itself (OpenAI's 401
    shows its prefix and last four characters)."""
    config = two_models(fake.base_url)
    config["providers"]["alpha"]["headers"] = {
        "x-portkey-api-key": PORTKEY,
        "cf-aig-authorization": f"Bearer {GATEWAY}",
    }
    router = await start_router(config)
    edge = await start_edge(router)
    echoed = f"Header x-portkey-api-key ({PORTKEY}) and token {GATEWAY} name no workspace."
    fake.state.set_scenario(
        Scenario(status=400, error_body={"error": {"message": echoed}}), model="model-b"
    )
    masked = "Incorrect API key provided: sk-alph**********ha-1. You can find your API key at …"
    fake.state.set_scenario(
        Scenario(status=401, error_body={"error": {"message": masked, "code": "invalid_api_key"}}),
        model="model-a",
    )

    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        headers_echoed = await http.post("/v1/chat/completions", json=chat("b"))
        key_masked = await http.post("/v1/chat/completions", json=chat("a"))

    assert headers_echoed.status_code == 400
    assert headers_echoed.json()["error"]["message"] == (
        "Header x-portkey-api-key ([redacted]) and token [redacted] name no workspace."
    )
    assert key_masked.status_code == 503
    assert "Incorrect API key provided: [redacted]. You can" in key_masked.text
    assert "***" not in key_masked.text and "ha-1" not in key_masked.text
    # The log redactor knows them too (telemetry masks every configured secret in every line).
    assert {PORTKEY, f"Bearer {GATEWAY}", GATEWAY} <= set(
        config_secrets(SwitchboardConfig.model_validate({"auth": {"open": True}, **config}))
    )


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens", "n"])
async def test_the_max_tokens_ceiling_and_n_bound_hold_for_extra_json_too(
    fake: FakeUpstream, start_router: StartRouter, field: str
) -> None:
    """A gRPC caller writes `extra_json` itself: a `max_tokens` there reached the upstream
    past `server.max_tokens_ceiling`, which bounds only the typed field (`n`: `server.max_n`)."""
    router = await start_router(
        {**two_models(fake.base_url), "server": {"port": 0, "max_tokens_ceiling": 4096}}
    )
    params = chat_pb2.ChatParams(
        model="a",
        messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")],
        extra_json=orjson.dumps({field: 1_000_000}).decode(),
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=params))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(caught.value).openai_param == f"extra_json.{field}"
    assert fake.state.count() == 0
