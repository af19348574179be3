"""What the bedrock adapter sends: the URL (model id encoded), the key as a bearer token or a
SigV4 signature over exactly what goes out, and the control plane's URL for the model list."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from clients import chat_params_from_openai
from router_service.clock import ManualClock
from router_service.config import ProviderConfig
from router_service.providers import BedrockAdapter, ChatCall
from router_service.providers._sigv4 import (
    AwsCredentials,
    SignedRequestParts,
    parse_authorization,
    sign,
)

RUNTIME = "https://bedrock-runtime.eu-west-3.amazonaws.com"
ANSWER = {
    "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
}
IAM = "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY:the-token"
Sent = list[httpx.Request]


@pytest.fixture
async def adapter_for() -> AsyncIterator[Callable[..., tuple[BedrockAdapter, Sent]]]:
    clients: list[httpx.AsyncClient] = []

    def make(**config: Any) -> tuple[BedrockAdapter, Sent]:
        sent: Sent = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            if request.url.path.endswith("/foundation-models"):
                return httpx.Response(200, json={"modelSummaries": [{"modelId": "m1"}]})
            return httpx.Response(200, json=ANSWER)

        http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        clients.append(http)
        provider = ProviderConfig.model_validate(
            {"kind": "bedrock", "base_url": RUNTIME, "keys": ["k"], **config}
        )
        return BedrockAdapter("b", provider, http, ManualClock(1_440_938_160.0)), sent

    yield make
    for http in clients:
        await http.aclose()


def call(model: str, key: str) -> ChatCall:
    params, _ = chat_params_from_openai(
        {"model": "x", "messages": [{"role": "user", "content": "hello"}]}
    )
    return ChatCall(model, key, params, 10.0)


async def test_an_api_key_is_a_bearer_token(
    adapter_for: Callable[..., tuple[BedrockAdapter, Sent]],
) -> None:
    adapter, sent = adapter_for()
    completion = await adapter.chat(call("us.amazon.nova-lite-v1:0", "ABSKbase64key"))

    assert completion.choices[0].message.text == "hi"
    [request] = sent
    assert str(request.url) == f"{RUNTIME}/model/us.amazon.nova-lite-v1%3A0/converse"
    assert request.headers["authorization"] == "Bearer ABSKbase64key"
    assert "x-amz-date" not in request.headers
    assert orjson.loads(request.content) == {
        "messages": [{"role": "user", "content": [{"text": "hello"}]}]
    }


async def test_iam_credentials_sign_what_is_sent(
    adapter_for: Callable[..., tuple[BedrockAdapter, Sent]],
) -> None:
    adapter, sent = adapter_for(headers={"x-amz-custom": "yes", "x-other": "not signed"})
    arn = "arn:aws:bedrock:eu-west-3:123456789012:inference-profile/eu.meta.llama3-2-1b:0"
    await adapter.chat(call(arn, IAM))

    [request] = sent
    path = request.url.raw_path.decode()
    assert path == (
        "/model/arn%3Aaws%3Abedrock%3Aeu-west-3%3A123456789012%3Ainference-profile"
        "%2Feu.meta.llama3-2-1b%3A0/converse"
    )
    assert request.headers["x-amz-date"] == "20150830T123600Z"  # the injected clock
    assert request.headers["x-amz-security-token"] == "the-token"
    signed = parse_authorization(request.headers["authorization"])
    assert signed is not None
    assert (signed.region, signed.service) == ("eu-west-3", "bedrock")
    assert signed.signed_headers == (
        "content-type",
        "host",
        "x-amz-custom",
        "x-amz-date",
        "x-amz-security-token",
    )
    names = ("host", "content-type", "x-amz-custom")
    parts = SignedRequestParts(
        "POST", path, {n: request.headers[n] for n in names}, request.content
    )
    credentials = AwsCredentials(
        "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "the-token"
    )
    expected = sign(parts, credentials, "eu-west-3", "20150830T123600Z")
    assert request.headers["authorization"] == expected["authorization"]
    assert "wJalrXUtnFEMI" not in str(request.headers)


@pytest.mark.parametrize(
    ("base_url", "listed_at"),
    [
        (RUNTIME, "https://bedrock.eu-west-3.amazonaws.com/foundation-models"),
        ("https://bedrock-gw.internal", "https://bedrock-gw.internal/foundation-models"),
    ],
)
async def test_the_model_list_is_the_control_planes(
    adapter_for: Callable[..., tuple[BedrockAdapter, Sent]], base_url: str, listed_at: str
) -> None:
    adapter, sent = adapter_for(base_url=base_url, region="eu-west-3")
    assert await adapter.list_models(IAM, 5.0) == ["m1"]
    assert str(sent[0].url) == listed_at
    signed = parse_authorization(sent[0].headers["authorization"])
    assert signed is not None and "host" in signed.signed_headers
    assert sent[0].headers["host"] == httpx.URL(listed_at).host  # signed for where it goes
