"""Answer-side guardrails as a gRPC caller meets them: a real router on loopback, the fake
upstream answering with a secret (by default it echoes the caller's last message), real
channels. Redacted and withheld answers, unary and streamed; a response-only rule leaves the
request alone and a request-only rule the answer; the response cache keeps the screened answer
(never the raw one) and never serves one screened by other rules; a withheld stream closes its
upstream call; metrics, audit lines and spans name rules, never text."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import orjson
import pytest
from aiohttp import web

from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import MemoryStateStore
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import serve_app
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config
from tests.router_service.auth.test_auth_grpc import audited

pytestmark = pytest.mark.timeout(60)

BOT, OTHER = "sk-support-bot-key", "sk-other-app-key"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "jane@example.com"
PHONE = "+14155552671"
RULES: list[dict[str, Any]] = [
    {"name": "request-phones", "detect": ["phone"], "action": "redact"},
    {
        "name": "answer-pii",
        "detect": ["email", "credit_card"],
        "action": "redact",
        "apply_to": ["response"],
    },
    {
        "name": "answer-secrets",
        "detect": ["api_key"],
        "action": "block",
        "apply_to": ["response"],
        "clients": ["support-bot"],
    },
]
PROSE = "and then the answer goes on for a while, as answers do. "


def _config(fake_url: str, **sections: Any) -> dict[str, Any]:
    return guarded_config(
        fake_url,
        client("support-bot", BOT),
        client("other-app", OTHER),
        guardrails=RULES,
        **sections,
    )


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(_config(fake.base_url))


def _sent(fake: FakeUpstream) -> str:
    return str(fake.state.calls()[-1].body["messages"][-1]["content"])


async def _stream(router: RouterHandle, key: str, **params: Any) -> list[pb.ChatStreamResponse]:
    call = router.stub.ChatStream(chat_stream(**params), metadata=bearer(key))
    return [event async for event in call]


def _streamed(events: list[pb.ChatStreamResponse]) -> dict[int, tuple[str, str]]:
    """Each choice's relayed text and finish reason."""
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for event in events:
        for choice in event.chunk.choices if event.WhichOneof("event") == "chunk" else ():
            texts[choice.index] = texts.get(choice.index, "") + choice.delta.text
            if choice.finish_reason_raw:
                finishes[choice.index] = choice.finish_reason_raw
    return {index: (text, finishes.get(index, "")) for index, text in texts.items()}


async def test_a_unary_answer_is_redacted_and_the_request_was_not(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    answer = await router.stub.Chat(chat(text=f"mail {EMAIL}"), metadata=bearer(BOT))
    assert _sent(fake) == f"mail {EMAIL}"  # a response-only rule leaves the request alone
    assert answer.completion.choices[0].message.text == "Echo: mail [REDACTED:email]"
    assert list(answer.route.guardrails) == ["answer-pii"]


async def test_a_request_only_rule_leaves_the_answer_alone(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    fake.state.set_scenario(Scenario(content=f"call {PHONE}"))
    answer = await router.stub.Chat(chat(text=f"my number is {PHONE}"), metadata=bearer(BOT))
    assert _sent(fake) == "my number is [REDACTED:phone]"
    assert answer.completion.choices[0].message.text == f"call {PHONE}"
    assert list(answer.route.guardrails) == ["request-phones"]


async def test_both_sides_are_named_on_the_route_request_first(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    answer = await router.stub.Chat(chat(text=f"{PHONE} {EMAIL}"), metadata=bearer(BOT))
    assert answer.completion.choices[0].message.text == "Echo: [REDACTED:phone] [REDACTED:email]"
    assert list(answer.route.guardrails) == ["request-phones", "answer-pii"]


async def test_a_blocked_answer_is_withheld_with_content_filter_and_the_call_succeeds(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    answer = await router.stub.Chat(chat(text=f"the key is {AWS_KEY}", n=2), metadata=bearer(BOT))
    assert len(answer.completion.choices) == 2
    for choice in answer.completion.choices:
        assert choice.message.WhichOneof("content") is None
        assert choice.finish_reason == chat_pb2.FINISH_REASON_CONTENT_FILTER
        assert choice.finish_reason_raw == "content_filter"
    assert list(answer.route.guardrails) == ["answer-secrets"]
    assert AWS_KEY not in str(answer)
    # The rule names support-bot only: another client's answer passes.
    other = await router.stub.Chat(chat(text=f"the key is {AWS_KEY}"), metadata=bearer(OTHER))
    assert other.completion.choices[0].message.text == f"Echo: the key is {AWS_KEY}"


async def test_a_streamed_answer_is_redacted_and_its_summary_names_the_rule(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    text = PROSE * 3 + f"write to {EMAIL} or pay with 4111 1111 1111 1111. " + PROSE * 3
    fake.state.set_scenario(Scenario(content=text))
    events = await _stream(router, OTHER, n=2)
    expected = text.replace(EMAIL, "[REDACTED:email]")
    expected = expected.replace("4111 1111 1111 1111", "[REDACTED:credit_card]")
    assert _streamed(events) == {0: (expected, "stop"), 1: (expected, "stop")}
    assert events[0].WhichOneof("event") == "route"
    assert list(events[0].route.guardrails) == []  # sent before the answer existed
    assert events[-1].WhichOneof("event") == "summary"
    assert list(events[-1].summary.route.guardrails) == ["answer-pii"]


async def test_deltas_that_cite_nothing_do_not_release_the_held_text(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    # An `annotations` delta releases what is held first (its offsets move with finds), but
    # an empty list on every delta moves nothing: a card a word a chunk is still found whole.
    text = f"pay with 4111 1111 1111 1111. {PROSE}"
    fake.state.set_scenario(Scenario(content=text, empty_annotations=True))
    events = await _stream(router, OTHER)
    expected = text.replace("4111 1111 1111 1111", "[REDACTED:credit_card]")
    assert _streamed(events) == {0: (expected, "stop")}


async def test_a_blocked_stream_ends_with_content_filter_and_closes_its_upstream_call(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    # The upstream has 400 chunks after the key (the 53rd) but waits after the 90th: the router
    # (which decides once up to 159 characters, ~32 chunks, followed the key) withholds every
    # choice (n=2) and stops reading while it waits, however slow the machine (chunks 10 ms
    # apart could all be sent before a loaded router looked).
    before = PROSE * 4 + "Sure, the key is "
    text = f"{before}{AWS_KEY} and " + "more " * 400
    fake.state.set_scenario(Scenario(content=text, held_after_chunks=90))
    events = await _stream(router, BOT, n=2)
    streamed = _streamed(events)
    assert [finish for _, finish in streamed.values()] == ["content_filter"] * 2
    for released, _ in streamed.values():  # some of what came before the key, never more
        assert released and before.startswith(released)
    assert AWS_KEY not in str(events)
    assert events[-1].WhichOneof("event") == "summary"
    assert list(events[-1].summary.route.guardrails) == ["answer-secrets"]
    [call] = await fake.state.wait_for_count(1)
    assert call.outcome == "client_disconnected" and call.chunks_sent < 100
    await fake.state.wait_idle()
    assert await router.leases_held() == 0


async def test_a_stream_without_rules_that_apply_is_relayed_chunk_for_chunk(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = _config(fake.base_url)
    config["guardrails"] = [{**RULES[1], "models": ["alpha/*"]}]  # not `chain`
    router = await start_router(config)
    events = await _stream(router, OTHER, text=f"mail {EMAIL} now")
    chunks = [e.chunk for e in events if e.WhichOneof("event") == "chunk"]
    assert [c.choices[0].delta.text for c in chunks[1:4]] == ["Echo: ", "mail ", f"{EMAIL} "]


def _kept_bytes(router: RouterHandle) -> bytes:
    store = router.runtime.store
    assert isinstance(store, MemoryStateStore)
    return b"".join(data for data, _ in store.documents._entries.values())


async def test_the_cache_keeps_the_screened_answer_only(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(_config(fake.base_url, cache={"enabled": True, "ttl_s": 600}))
    first = await router.stub.Chat(chat(text=f"mail {EMAIL}"), metadata=bearer(BOT))
    second = await router.stub.Chat(chat(text=f"mail {EMAIL}"), metadata=bearer(BOT))
    assert second.route.cache == routing_pb2.CACHE_STATUS_HIT
    assert second.completion == first.completion
    assert second.completion.choices[0].message.text == "Echo: mail [REDACTED:email]"
    assert list(second.route.guardrails) == ["answer-pii"]
    streamed = await _stream(router, BOT, text=f"mail {EMAIL} " + PROSE * 3)
    replayed = await _stream(router, BOT, text=f"mail {EMAIL} " + PROSE * 3)
    assert replayed[0].route.cache == routing_pb2.CACHE_STATUS_HIT
    assert list(replayed[0].route.guardrails) == ["answer-pii"]  # the answer is known here
    assert _streamed(replayed) == _streamed(streamed)
    assert "[REDACTED:email]" in _streamed(replayed)[0][0]
    await router.runtime.afterwork.drain()
    kept = _kept_bytes(router)
    assert b"[REDACTED:email]" in kept and EMAIL.encode() not in kept
    assert len(fake.state.calls()) == 2


async def test_an_answer_kept_under_other_rules_is_not_served(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = _config(fake.base_url, cache={"enabled": True, "ttl_s": 600})
    config["guardrails"] = []
    router = await start_router(config)
    raw = await router.stub.Chat(chat(text=f"mail {EMAIL}"), metadata=bearer(BOT))
    assert raw.completion.choices[0].message.text == f"Echo: mail {EMAIL}"
    await router.server.reload(
        SwitchboardConfig.model_validate(
            _config(fake.base_url, **{"cache": {"enabled": True, "ttl_s": 600}})
        )
    )
    screened = await router.stub.Chat(chat(text=f"mail {EMAIL}"), metadata=bearer(BOT))
    assert screened.route.cache == routing_pb2.CACHE_STATUS_MISS
    assert screened.completion.choices[0].message.text == "Echo: mail [REDACTED:email]"


async def test_finds_are_counted_audited_and_named_on_the_span_never_their_text(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = _config(fake.base_url)
    config["auth"]["audit"] = "all"
    with TelemetryCapture() as captured:
        router = await start_router(config)
        quoted = (*bearer(BOT), ("x-request-id", "req-quote-me"))
        await router.stub.Chat(chat(text=f"{EMAIL} {EMAIL}"), metadata=quoted)
        await _stream(router, BOT, text=f"key {AWS_KEY}")
        points = {
            (labels["rule"], labels["action"], labels["detector"], labels["side"]): point.value
            for labels, point in captured.points("switchboard.guardrail.matches")
        }
        spans = captured.spans()
    assert points == {
        ("answer-pii", "redact", "email", "response"): 2,
        ("answer-secrets", "block", "api_key", "response"): 1,
    }
    named = [
        tuple(value)
        for s in spans
        if s.attributes and isinstance(value := s.attributes.get("switchboard.guardrails"), tuple)
    ]
    assert ("answer-pii",) in named and ("answer-secrets",) in named
    lines = [audited(r) for r in caplog.records if r.name == "switchboard.audit"]
    answered = [line for line in lines if str(line["outcome"]).startswith("answer_")]
    assert [(line["outcome"], line["client"], line["reason"]) for line in answered] == [
        ("answer_redacted", "support-bot", "guardrail:answer-pii"),
        ("answer_withheld", "support-bot", "guardrail:answer-secrets:api_key"),
    ]
    assert [line.get("request_id") for line in answered] == ["req-quote-me", None]
    for record in caplog.records:
        text = f"{record.getMessage()} {record.__dict__}"
        assert EMAIL not in text and AWS_KEY not in text
    for span in spans:
        assert EMAIL not in str(span.attributes) and AWS_KEY not in str(span.attributes)


async def test_a_rule_on_both_sides_screens_the_request_and_the_answer(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = _config(fake.base_url)
    config["guardrails"] = [
        {
            "name": "pii",
            "detect": ["email"],
            "action": "redact",
            "apply_to": ["request", "response"],
        }
    ]
    router = await start_router(config)
    fake.state.set_scenario(Scenario(content=f"I told {EMAIL}"))
    answer = await router.stub.Chat(chat(text=f"mail {EMAIL}"), metadata=bearer(OTHER))
    assert _sent(fake) == "mail [REDACTED:email]"
    assert answer.completion.choices[0].message.text == "I told [REDACTED:email]"
    assert list(answer.route.guardrails) == ["pii"]  # named once


async def test_a_cut_stream_sends_neither_its_held_text_nor_its_citation(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # A Responses upstream cites its whole answer amid the text, then the stream ends without
    # its finish: the error event ends it, the held tail (a find may begin there) and the
    # citation of it never go out.
    config = _config(fake.base_url)
    hosted = {"provider": "alpha", "model": "gpt-hosted", "api": "responses"}
    config["models"]["hosted"] = {"deployments": [hosted]}
    router = await start_router(config)
    text = PROSE * 5 + f"Write to {EMAIL}."
    answer = Scenario(tool_call=True, content=text, cite_after_deltas=2)
    ask = chat_stream("hosted", tools=[chat_pb2.Tool(type="web_search")])
    fake.state.set_scenario(answer)
    whole = [e async for e in router.stub.ChatStream(ask, metadata=bearer(OTHER))]
    assert _cited(whole)  # uncut, its citation goes out with its text
    fake.state.set_scenario(replace(answer, truncate_after_chunks=999))  # all but the finish
    events = [e async for e in router.stub.ChatStream(ask, metadata=bearer(OTHER))]

    said, finish = _streamed(events)[0]
    assert finish == "" and said and text.startswith(said) and EMAIL not in said
    assert _cited(events) == []
    assert events[-1].error.code == "truncated"


def _two_choices_one_cut(text: str) -> bytes:
    """An `n: 2` stream whose first choice finishes and whose second is cut mid-text, though
    its usage and `[DONE]` still come (an upstream that lost the choice)."""

    def event(index: int, delta: dict[str, str], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "finish_reason": finish}
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        return b"data: " + orjson.dumps(chunk | {"choices": [choice]}) + b"\n\n"

    usage = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2,
                                      "total_tokens": 3}}  # fmt: skip
    body = [event(0, {"content": "Short."}), event(0, {}, "stop")]
    body += [event(1, {"content": text[i : i + 8]}) for i in range(0, len(text), 8)]
    return b"".join([*body, b"data: " + orjson.dumps(usage) + b"\n\ndata: [DONE]\n\n"])


async def test_a_stream_ending_before_every_choice_finished_is_cut(
    start_router: StartRouter,
) -> None:
    # `n: 2`: the first choice finished, the second did not when the upstream ended. As a
    # single choice's stream ending without its finish: the error event ends it, and the second
    # choice's held tail (a find may begin there) never goes out as if it were whole.
    text = PROSE * 5 + f"Write to {EMAIL}."

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_two_choices_one_cut(text))
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    async with serve_app(app) as base_url:
        router = await start_router(_config(f"{base_url}/v1"))
        events = await _stream(router, OTHER, n=2)

    streamed = _streamed(events)
    assert streamed[0] == ("Short.", "stop")
    said, finish = streamed[1]
    assert finish == "" and text.startswith(said) and EMAIL not in said
    assert events[-1].error.code == "truncated"


def _cited(events: list[pb.ChatStreamResponse]) -> list[Any]:
    """The annotations a stream's chunks carried."""
    chunks = [e.chunk for e in events if e.WhichOneof("event") == "chunk"]
    extras = [c.delta.extra_json for chunk in chunks for c in chunk.choices]
    return [a for extra in extras if extra for a in orjson.loads(extra).get("annotations", [])]
