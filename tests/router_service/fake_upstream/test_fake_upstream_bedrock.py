"""The fake upstream's Bedrock: Converse at its real paths, streams as AWS event streams, its
errors with `x-amzn-ErrorType`, refusals of bodies Converse would refuse, and SigV4 checked
with the secret it holds (a request signed with another, or altered after signing, is 403)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from router_service.fake_upstream import (
    FAKE_AWS_ACCESS_KEY_ID,
    FAKE_AWS_SECRET_ACCESS_KEY,
    FakeUpstream,
    Scenario,
)
from router_service.providers._eventstream import EventStreamDecoder, Message
from router_service.providers._sigv4 import AwsCredentials, SignedRequestParts, amz_date, sign

BEARER = {"Authorization": "Bearer kb"}
BODY = {"messages": [{"role": "user", "content": [{"text": "hello world"}]}]}
PATH = "/model/us.amazon.nova-lite-v1%3A0/converse"


@pytest.fixture
async def http(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client:
        yield client


def messages(raw: bytes) -> list[Message]:
    decoder = EventStreamDecoder()
    out = list(decoder.feed(raw))
    decoder.close()
    return out


async def test_converse_and_its_stream(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    data = (await http.post(PATH, json=BODY, headers=BEARER)).json()
    assert data["output"]["message"]["content"] == [{"text": "Echo: hello world"}]
    assert data["stopReason"] == "end_turn" and data["usage"]["outputTokens"] == 3
    record = fake.state.last()
    assert record is not None and (record.key, record.model) == ("kb", "us.amazon.nova-lite-v1:0")

    resp = await http.post(PATH + "-stream", json=BODY, headers=BEARER)
    assert resp.headers["content-type"] == "application/vnd.amazon.eventstream"
    events = [m.header(":event-type") for m in messages(resp.content)]
    assert events[:2] == ["messageStart", "contentBlockDelta"]
    assert events[-3:] == ["contentBlockStop", "messageStop", "metadata"]


async def test_errors_name_their_exception(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after=None))
    resp = await http.post(PATH, json=BODY, headers=BEARER)
    assert resp.status_code == 429
    assert resp.headers["x-amzn-ErrorType"].startswith("ThrottlingException:")
    assert set(resp.json()) == {"message"}

    fake.state.set_scenario(
        Scenario(chunks=4, wrapped_error={"code": 429}, wrapped_error_at_chunk=3)
    )
    streamed = messages((await http.post(PATH + "-stream", json=BODY, headers=BEARER)).content)
    assert [m.header(":message-type") for m in streamed] == ["event", "event", "exception"]
    assert streamed[-1].header(":exception-type") == "throttlingException"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({**BODY, "model": "x"}, "extraneous key [model]"),
        ({**BODY, "inferenceConfig": {"max_tokens": 5}}, "inferenceConfig.max_tokens"),
        ({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, "alternate"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
            "exactly one",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"image": {"format": "bmp", "source": {"bytes": "AA"}}}],
                    }
                ]
            },
            "image",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "document": {
                                    "format": "pdf",
                                    "name": "a.pdf",
                                    "source": {"bytes": "AA"},
                                }
                            }
                        ],
                    }
                ]
            },
            "name",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": []}}]}
                ]
            },
            "toolConfig",
        ),
    ],
)
async def test_bodies_converse_refuses(
    http: httpx.AsyncClient, body: dict[str, Any], says: str
) -> None:
    resp = await http.post(PATH, json=body, headers=BEARER)
    assert resp.status_code == 400
    assert resp.headers["x-amzn-ErrorType"].startswith("ValidationException:")
    assert says in resp.json()["message"]


def signed_headers(path: str, body: bytes, secret: str, host: str) -> dict[str, str]:
    credentials = AwsCredentials(FAKE_AWS_ACCESS_KEY_ID, secret)
    parts = SignedRequestParts(
        "POST", path, {"host": host, "content-type": "application/json"}, body
    )
    return {
        "content-type": "application/json",
        **sign(parts, credentials, "us-east-1", amz_date(1.7e9)),
    }


@pytest.mark.parametrize(
    ("secret", "altered", "status", "exception"),
    [
        (FAKE_AWS_SECRET_ACCESS_KEY, False, 200, None),
        ("anotherSecret", False, 403, "InvalidSignatureException"),
        (FAKE_AWS_SECRET_ACCESS_KEY, True, 403, "InvalidSignatureException"),
    ],
    ids=["right_secret", "wrong_secret", "body_altered_after_signing"],
)
async def test_sigv4_is_verified(
    http: httpx.AsyncClient,
    fake: FakeUpstream,
    secret: str,
    altered: bool,
    status: int,
    exception: str | None,
) -> None:
    body = orjson.dumps(BODY)
    host = f"127.0.0.1:{fake.port}"
    headers = signed_headers(PATH, body, secret, host)
    sent = orjson.dumps({**BODY, "system": [{"text": "x"}]}) if altered else body

    resp = await http.post(PATH, content=sent, headers=headers)

    assert resp.status_code == status
    if exception is not None:
        assert resp.headers["x-amzn-ErrorType"].startswith(f"{exception}:")
    record = fake.state.last()
    assert record is not None and record.key == FAKE_AWS_ACCESS_KEY_ID


async def test_an_unknown_access_key_id_is_unrecognized(http: httpx.AsyncClient) -> None:
    headers = signed_headers(PATH, b"{}", "s", "h")
    headers["authorization"] = headers["authorization"].replace(
        FAKE_AWS_ACCESS_KEY_ID, "AKIAUNKNOWN000000000"
    )
    resp = await http.post(PATH, content=b"{}", headers=headers)
    assert resp.status_code == 403
    assert resp.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException:")


async def test_the_model_list(http: httpx.AsyncClient, fake: FakeUpstream) -> None:
    listed = (await http.get("/foundation-models", headers=BEARER)).json()["modelSummaries"]
    assert [m["modelId"] for m in listed] == fake.state.models
