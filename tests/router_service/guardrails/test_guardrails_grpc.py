"""Guardrails as a gRPC caller meets them: a real router on loopback, the fake upstream, real
channels. A blocked call never reaches the upstream nor the caller's rpm; a redacted one reaches
it redacted and its RouteInfo says which rules redacted it; scoping, embeddings, the response
cache, metrics, spans and a reload."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc
import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from clients import compaction_summary, details_from_rpc_error, encode_compaction
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config
from tests.router_service.auth.test_auth_grpc import audited

pytestmark = pytest.mark.timeout(60)

BOT, OTHER = "sk-support-bot-key", "sk-other-app-key"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
RULES: list[dict[str, Any]] = [
    {"name": "no-credentials", "detect": ["api_key", "private_key"], "action": "block"},
    {
        "name": "pii",
        "detect": ["email", "credit_card", "phone"],
        "action": "redact",
        "clients": ["support-bot"],
        "models": ["chain", "embed*"],
    },
    {"name": "internal-codenames", "patterns": [r"(?i)\bproject\s+falcon\b"], "action": "block"},
]


def _config(fake_url: str, **sections: Any) -> dict[str, Any]:
    return guarded_config(
        fake_url,
        client("support-bot", BOT, rpm=1),
        client("other-app", OTHER),
        guardrails=RULES,
        **sections,
    )


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(_config(fake.base_url))


def _sent_messages(fake: FakeUpstream) -> list[Any]:
    [call] = fake.state.calls()
    return list(call.body["messages"])


async def test_a_blocked_chat_never_reaches_the_upstream_nor_the_rpm(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(text=f"my key is {AWS_KEY}, fix it"), metadata=bearer(BOT))
    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "GUARDRAIL_BLOCKED"
    assert details.guardrail == "no-credentials"
    assert details.openai_code == "content_policy_violation"
    assert details.openai_param == "messages[0].content"
    assert "no-credentials" in details.message and "api_key" in details.message
    assert AWS_KEY not in details.message and AWS_KEY not in str(caught.value)
    assert fake.state.calls() == []
    # rpm 1: the blocked call took no place in the window.
    answer = await router.stub.Chat(chat(text="hello"), metadata=bearer(BOT))
    assert answer.route.deployment == "alpha/model-a"


async def test_a_blocked_stream_ends_before_its_first_message(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    request = chat_stream(text="status of Project Falcon?")
    call = router.stub.ChatStream(request, metadata=bearer(OTHER))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pytest.fail("a blocked stream sends nothing")
    assert details_from_rpc_error(caught.value).guardrail == "internal-codenames"
    assert fake.state.calls() == []


async def test_tool_arguments_and_text_parts_are_screened(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END PRIVATE KEY-----"
    tool_call = chat_pb2.ToolCall(
        id="c1", type="function", function=chat_pb2.FunctionCall(name="f", arguments=pem)
    )
    request = chat(text="hi")
    request.params.messages.append(
        chat_pb2.ChatMessage(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[tool_call])
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(request, metadata=bearer(OTHER))
    details = details_from_rpc_error(caught.value)
    assert details.openai_param == "messages[1].tool_calls[0].function.arguments"
    parts = chat_pb2.ContentParts(
        parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text=f"key {AWS_KEY}"))]
    )
    request = chat()
    request.params.messages.append(chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, parts=parts))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(request, metadata=bearer(OTHER))
    assert details_from_rpc_error(caught.value).openai_param == "messages[1].content[0].text"
    assert fake.state.calls() == []


async def test_redaction_reaches_the_upstream_and_the_route_says_so(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    text = "I am jane@example.com, card 4111 1111 1111 1111, call +44 20 7946 0958."
    system = chat_pb2.ChatMessage(role=chat_pb2.ROLE_SYSTEM, text="reply to ops@example.org")
    request = chat(text=text)
    request.params.messages.insert(0, system)
    answer = await router.stub.Chat(request, metadata=bearer(BOT))
    assert list(answer.route.guardrails) == ["pii"]
    sent = _sent_messages(fake)
    assert sent[0]["content"] == "reply to [REDACTED:email]"
    assert sent[1]["content"] == (
        "I am [REDACTED:email], card [REDACTED:credit_card], call [REDACTED:phone]."
    )


async def test_a_redacted_stream_says_so_on_its_route_event(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    call = router.stub.ChatStream(chat_stream(text="mail jane@example.com"), metadata=bearer(BOT))
    events = [event async for event in call]
    assert events[0].WhichOneof("event") == "route"
    assert list(events[0].route.guardrails) == ["pii"]
    assert _sent_messages(fake)[0]["content"] == "mail [REDACTED:email]"


async def test_redaction_is_scoped_to_its_clients_and_models(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    other = await router.stub.Chat(chat(text="mail jane@example.com"), metadata=bearer(OTHER))
    assert list(other.route.guardrails) == []
    assert _sent_messages(fake)[0]["content"] == "mail jane@example.com"
    fake.state.reset()
    # support-bot, but a model the rule does not name (the deployment itself).
    direct = await router.stub.Chat(
        chat(model="alpha/model-a", text="mail jane@example.com"), metadata=bearer(BOT)
    )
    assert list(direct.route.guardrails) == []
    assert _sent_messages(fake)[0]["content"] == "mail jane@example.com"


async def test_embeddings_inputs_are_redacted_and_token_inputs_pass(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    texts = embeddings_pb2.TextList(values=["plain", "jane@example.com wrote"])
    request = pb.EmbedRequest(params=embeddings_pb2.EmbeddingParams(model="embedder", texts=texts))
    answer = await router.stub.Embed(request, metadata=bearer(BOT))
    assert list(answer.route.guardrails) == ["pii"]
    [call] = fake.state.calls()
    assert call.body["input"] == ["plain", "[REDACTED:email] wrote"]
    blocked = pb.EmbedRequest(
        params=embeddings_pb2.EmbeddingParams(model="embedder", text=f"x {AWS_KEY}")
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Embed(blocked, metadata=bearer(OTHER))
    assert details_from_rpc_error(caught.value).openai_param == "input"
    assert len(fake.state.calls()) == 1


async def test_the_response_cache_is_keyed_on_the_redacted_request(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = _config(fake.base_url, cache={"enabled": True, "ttl_s": 600})
    config["auth"]["clients"][0].pop("rpm")
    router = await start_router(config)
    first = await router.stub.Chat(chat(text="mail jane@example.com"), metadata=bearer(BOT))
    second = await router.stub.Chat(chat(text="mail bob@example.net"), metadata=bearer(BOT))
    assert first.route.cache == routing_pb2.CACHE_STATUS_MISS
    # Both are "mail [REDACTED:email]" by the time the cache looks: one upstream call.
    assert second.route.cache == routing_pb2.CACHE_STATUS_HIT
    assert list(second.route.guardrails) == ["pii"]
    assert len(fake.state.calls()) == 1


async def test_finds_are_counted_and_named_on_the_span_never_their_text(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    with TelemetryCapture() as captured:
        router = await start_router(_config(fake.base_url))
        await router.stub.Chat(chat(text="a@example.com b@example.com"), metadata=bearer(BOT))
        with pytest.raises(grpc.aio.AioRpcError):
            await router.stub.Chat(chat(text=AWS_KEY), metadata=bearer(OTHER))
        points = {
            (labels["rule"], labels["action"], labels["detector"]): point.value
            for labels, point in captured.points("switchboard.guardrail.matches")
        }

        async def both_named() -> bool:  # a span ends after its caller has the answer
            return {("pii",), ("no-credentials",)} <= set(_named(captured.spans()))

        await eventually(both_named, what="both calls' spans ended")
        spans = captured.spans()
    assert points == {("pii", "redact", "email"): 2, ("no-credentials", "block", "api_key"): 1}
    for span in spans:
        assert "a@example.com" not in str(span.attributes) and AWS_KEY not in str(span.attributes)


async def test_a_reload_changes_the_guardrails(fake: FakeUpstream, router: RouterHandle) -> None:
    request = chat(text=f"key {AWS_KEY}")
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(request, metadata=bearer(OTHER))
    relaxed = _config(fake.base_url)
    relaxed["guardrails"] = RULES[1:]
    await router.server.reload(SwitchboardConfig.model_validate(relaxed))
    answer = await router.stub.Chat(request, metadata=bearer(OTHER))
    assert _sent_messages(fake)[0]["content"] == f"key {AWS_KEY}"
    assert answer.route.deployment == "alpha/model-a"
    stricter = _config(fake.base_url)
    stricter["guardrails"] = [{**RULES[1], "clients": None, "action": "block"}]
    await router.server.reload(SwitchboardConfig.model_validate(stricter))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(text="jane@example.com"), metadata=bearer(OTHER))
    assert details_from_rpc_error(caught.value).guardrail == "pii"


async def test_without_guardrails_nothing_is_screened(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(guarded_config(fake.base_url, client("other-app", OTHER)))
    answer = await router.stub.Chat(chat(text=f"key {AWS_KEY}"), metadata=bearer(OTHER))
    assert list(answer.route.guardrails) == []
    assert _sent_messages(fake)[0]["content"] == f"key {AWS_KEY}"


async def test_what_is_stored_is_redacted_by_every_rule_and_never_refused(
    router: RouterHandle,
) -> None:
    """A stored response names no model and storing refuses nothing: every rule of the client
    redacts what it keeps (the block rule too), whatever model the rule names."""
    item = '{"type": "message", "role": "user", "content": [{"type": "input_text", '
    item += f'"text": "key {AWS_KEY} from jane@example.com"}}]}}'
    response = pb.StoredResponse(
        id="resp_1",
        messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="jane@example.com")],
        input_items_json=[item],
        response_json='{"id": "resp_1", "model": "model-a"}',
    )
    await router.stub.StoreResponse(
        pb.StoreResponseRequest(response=response), metadata=bearer(BOT)
    )
    loaded = await router.stub.LoadResponses(
        pb.LoadResponsesRequest(ids=["resp_1"]), metadata=bearer(BOT)
    )
    [kept] = loaded.responses
    assert kept.messages[0].text == "[REDACTED:email]"
    assert '"text":"key [REDACTED:api_key] from [REDACTED:email]"' in kept.input_items_json[0]


async def test_a_stored_compaction_items_summary_is_redacted(router: RouterHandle) -> None:
    """A compaction item's summary is text in an encoding (`encrypted_content`): kept
    redacted as a message's text is, in a stored response's input items and a conversation's."""
    summary = f"Jane (jane@example.com) pasted key {AWS_KEY}."
    item = f'{{"type": "compaction", "encrypted_content": "{encode_compaction(summary)}"}}'
    response = pb.StoredResponse(
        id="resp_1", input_items_json=[item], response_json='{"id": "resp_1", "model": "m"}'
    )
    await router.stub.StoreResponse(
        pb.StoreResponseRequest(response=response), metadata=bearer(BOT)
    )
    loaded = await router.stub.LoadResponses(
        pb.LoadResponsesRequest(ids=["resp_1"]), metadata=bearer(BOT)
    )
    [kept] = loaded.responses
    content = orjson.loads(kept.input_items_json[0])["encrypted_content"]
    assert compaction_summary(content) == "Jane ([REDACTED:email]) pasted key [REDACTED:api_key]."


async def test_the_audit_line_names_the_rule_and_no_log_holds_the_text(
    router: RouterHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await router.stub.Chat(chat(text="mail jane@example.com"), metadata=bearer(BOT))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(chat(text=f"key {AWS_KEY}"), metadata=bearer(OTHER))
    lines = [audited(r) for r in caplog.records if r.name == "switchboard.audit"]
    guarded = [line for line in lines if line["outcome"] in ("redacted", "denied")]
    assert [(line["outcome"], line["client"], line["reason"]) for line in guarded] == [
        ("redacted", "support-bot", "guardrail:pii"),
        ("denied", "other-app", "guardrail:no-credentials:api_key"),
    ]
    for record in caplog.records:
        text = f"{record.getMessage()} {record.__dict__}"
        assert "jane@example.com" not in text and AWS_KEY not in text


async def test_a_hostile_mebibyte_prompt_is_screened_and_sent(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    """Near-misses of every detector, 1 MiB of them, then one real find at the very end: the
    scan runs to the end (linear work; the test's timeout is the generous bound)."""
    hostile = ("a@" * 40 + " 4 1 1 1 +1 (555 sk-" + "x" * 30 + " ") * (1 << 20 >> 7)
    answer = await router.stub.Chat(chat(text=hostile + "jane@example.com"), metadata=bearer(BOT))
    assert list(answer.route.guardrails) == ["pii"]
    sent = _sent_messages(fake)[0]["content"]
    assert sent == hostile + "[REDACTED:email]"


def _named(spans: Sequence[ReadableSpan]) -> list[tuple[str, ...]]:
    """The guardrails each span names (`switchboard.guardrails`)."""
    return [
        tuple(str(rule) for rule in value)
        for s in spans
        if s.attributes and isinstance(value := s.attributes.get("switchboard.guardrails"), tuple)
    ]
