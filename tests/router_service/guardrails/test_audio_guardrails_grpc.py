"""A spoken chat answer (`modalities: ["audio"]`, passed through to an OpenAI deployment) through
the answer's guardrails, as a gRPC caller meets it: a real router on loopback, the fake upstream
answering with the message's `audio` (its transcript echoing the caller). A find in the
transcript withholds the choice, audio and all, unary and streamed; a clean stream's audio
comes whole with its finish."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.cache import cache_key
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config

pytestmark = pytest.mark.timeout(60)

BOT = "sk-support-bot-key"
EMAIL = "jane@example.com"
RULES = [{"name": "answer-pii", "detect": ["email"], "action": "redact", "apply_to": ["response"]}]
SPOKEN = orjson.dumps({"modalities": ["text", "audio"], "audio": {"voice": "alloy"}}).decode()


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    config = guarded_config(fake.base_url, client("support-bot", BOT), guardrails=RULES)
    return await start_router(config)


def _audio(extra_json: str) -> dict[str, Any]:
    return dict(orjson.loads(extra_json).get("audio", {})) if extra_json else {}


async def test_a_find_in_a_unary_answer_s_transcript_withholds_it_audio_and_all(
    router: RouterHandle,
) -> None:
    answer = await router.stub.Chat(
        chat(text=f"mail {EMAIL}", extra_json=SPOKEN), metadata=bearer(BOT)
    )
    choice = answer.completion.choices[0]
    assert choice.finish_reason_raw == "content_filter"
    assert _audio(choice.message.extra_json) == {}
    assert list(answer.route.guardrails) == ["answer-pii"]
    clean = await router.stub.Chat(chat(text="hours?", extra_json=SPOKEN), metadata=bearer(BOT))
    assert _audio(clean.completion.choices[0].message.extra_json)["transcript"] == "Echo: hours?"


async def _streamed(router: RouterHandle, text: str) -> tuple[list[dict[str, Any]], str]:
    """The `audio` of each chunk that carried some, and the finish reason."""
    call = router.stub.ChatStream(chat_stream(text=text, extra_json=SPOKEN), metadata=bearer(BOT))
    audios: list[dict[str, Any]] = []
    finish = ""
    async for event in call:
        event_: pb.ChatStreamResponse = event
        for choice in event_.chunk.choices if event_.WhichOneof("event") == "chunk" else ():
            if audio := _audio(choice.delta.extra_json):
                audios.append(audio)
            finish = choice.finish_reason_raw or finish
    return audios, finish


async def test_a_find_in_a_streamed_transcript_withholds_it_before_any_audio_is_sent(
    router: RouterHandle,
) -> None:
    assert await _streamed(router, f"mail {EMAIL} today") == ([], "content_filter")


async def test_a_clean_streamed_audio_comes_whole_with_its_finish(router: RouterHandle) -> None:
    audios, finish = await _streamed(router, "what are your hours today?")
    assert finish == "stop" and len(audios) == 1
    assert audios[0]["transcript"] == "Echo: what are your hours today?"
    assert audios[0]["id"].startswith("audio_") and audios[0]["expires_at"]


async def test_a_spoken_answer_kept_by_a_release_that_did_not_screen_it_is_not_served(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """What a release before this screen kept (its key named the same rules, its transcript
    raw) is never served: the key names what the screen covers too (`SCREENING`)."""
    config = guarded_config(fake.base_url, client("support-bot", BOT), guardrails=RULES)
    router = await start_router({**config, "cache": {"enabled": True, "ttl_s": 600}})
    request = chat(text=f"mail {EMAIL}", extra_json=SPOKEN)
    cache, rules = router.runtime.cache, router.runtime.guardrails.answers("support-bot", "chain")
    assert rules is not None
    before = "|answers:" + ",".join(rule.signature for rule in rules.rules)  # its key's words
    key = cache_key("chat", "support-bot", request.params, await cache.generation("chain") + before)
    said = orjson.dumps({"audio": {"id": "audio_1", "transcript": f"Echo: mail {EMAIL}"}})
    raw = chat_pb2.ChatMessage(role=chat_pb2.ROLE_ASSISTANT, extra_json=said.decode())
    kept = pb.ChatResponse(
        completion=chat_pb2.ChatCompletion(choices=[chat_pb2.Choice(message=raw)])
    )
    await cache.keep("support-bot", pb.CachedAnswer(key=key, chat=kept))
    await router.runtime.afterwork.drain()
    answer = await router.stub.Chat(request, metadata=bearer(BOT))
    assert answer.route.cache == routing_pb2.CACHE_STATUS_MISS
    assert answer.completion.choices[0].finish_reason_raw == "content_filter"
