"""`truncation: auto` and the key's own rpm and tpm windows, over a real gRPC channel (memory and
Redis state). Each try the upstream received counts in the key's rpm, as the upstream counts it;
the key's tpm counts what the try sent (a shortened retry, its shorter input); and a retry the
key's limits hold back waits for the key as a queued request does, then is told NO_CAPACITY:
never the context-length error of a try that was left unmade."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.outcomes import Outcome
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_truncation import AUTO, CONVERSATION, outcomes, reason

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases


def one_key(fake_url: str, state: dict[str, Any], queue_timeout_s: float, **key: Any) -> Any:
    """`chain` on alpha's one key, with its limits `key`."""
    solo = {"deployments": [{"provider": "alpha", "model": "model-a"}]}
    config = base_config(fake_url, models={"chain": solo}, state=state)
    config["providers"]["alpha"].update(
        keys=[{"key": "sk-alpha-1", **key}], queue_timeout_s=queue_timeout_s
    )
    return config


def hello(max_tokens: int) -> pb.ChatRequest:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    params = chat_pb2.ChatParams(model="chain", messages=[message], max_tokens=max_tokens)
    return pb.ChatRequest(params=params)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_the_keys_tpm_counts_the_shortened_input_the_retry_sent(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any], stream: bool
) -> None:
    """An upstream that reports no usage leaves a call's estimate in the key's tpm: the retry's
    is that of the shortened input it sent (35 tokens), not the whole one (62), which the
    upstream never read. A next request of 62 then fits the key's 100."""
    fake.state.set_scenario(Scenario(context_window=12, no_usage=True))
    router = await start_router(one_key(fake.base_url, state_section, 0, tpm=100))
    conversation = pb.ChatRequest(params=CONVERSATION, routing=AUTO)
    conversation.params.max_tokens = 10  # 62 tokens whole, 35 with the 4 oldest left out
    if stream:
        request = pb.ChatStreamRequest(params=conversation.params, routing=AUTO)
        events = [event async for event in router.stub.ChatStream(request)]
        assert events[-1].summary.route.truncated_messages == 4
    else:
        answer = await router.stub.Chat(conversation)
        assert outcomes(answer.route) == [Outcome.CONTEXT_TOO_LONG, Outcome.OK]
    after = await router.stub.Chat(hello(58))  # 62 tokens: 35 + 62 <= 100 < 62 + 62
    assert after.completion.choices[0].message.text == "Echo: hi"


async def test_a_retry_held_back_by_the_keys_rpm_is_no_capacity_not_too_long(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    """Two tries spend a key's rpm of 2 (the upstream received both: each counts); the third,
    shortened, cannot go this minute. The caller is told the key is at its limit (429
    NO_CAPACITY, with when), not that its input is too long: it never was sent."""
    fake.state.set_scenario(Scenario(context_window=5))
    router = await start_router(one_key(fake.base_url, state_section, 0, rpm=2))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=AUTO))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason(refused.value) == "NO_CAPACITY"
    assert fake.state.count(path="/chat/completions") == 2


async def test_a_retry_held_back_by_the_keys_rpm_waits_for_the_key(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    """With a queue to wait in, the shortened retry waits for the key's next minute as a
    queued request would, and is answered: three calls for one request, each counted once."""
    fake.state.set_scenario(Scenario(context_window=5))
    clock = ManualClock()
    config = one_key(fake.base_url, state_section, 300, rpm=2)
    router = await start_router(config, clock=clock)
    asked = asyncio.ensure_future(
        router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=AUTO))
    )
    await _waiting(router, 1)
    assert fake.state.count(path="/chat/completions") == 2
    clock.advance(120.0)  # the key's rpm window moves on
    answer = await asked
    assert outcomes(answer.route) == [Outcome.CONTEXT_TOO_LONG] * 2 + [Outcome.OK]
    assert answer.route.truncated_messages == 6
    assert fake.state.count(path="/chat/completions") == 3


async def _waiting(router: RouterHandle, n: int) -> None:
    async def queued() -> bool:  # polled: joining the queue is no event to wait on
        return router.runtime.pools["alpha"].waiting == n

    await eventually(queued, what=f"{n} call(s) waiting for alpha's key")


# OpenAI's 429 for a request larger than the key's (its organization's) whole tokens-per-minute
# budget: not the model's context window, which would take it.
TPM_TOO_LARGE = {
    "error": {
        "message": "Request too large for gpt-4o in organization org-x on tokens per min (TPM): "
        "Limit 30000, Requested 36278. The input or output tokens must be reduced in order to run "
        "successfully. Visit https://platform.openai.com/account/rate-limits to learn more.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


async def test_a_request_too_large_for_the_keys_tpm_fails_over_whole(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    """Not a context-length refusal: nothing is left out. Alpha's other key (another
    organization's budget) is asked, then beta, with the whole input; no key is cooled (each
    serves smaller requests as before)."""
    for key in ("sk-alpha-1", "sk-alpha-2"):
        fake.state.set_scenario(Scenario(status=429, error_body=TPM_TOO_LARGE), key=key)
    answer = await router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=AUTO))
    assert outcomes(answer.route) == [Outcome.RATE_LIMITED] * 2 + [Outcome.OK]
    assert answer.route.truncated_messages == 0
    calls = fake.state.calls(path="/chat/completions")
    assert [len(call.body["messages"]) for call in calls] == [8, 8, 8]
    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest())
    assert {key.state for key in listed.keys} == {admin_pb.KEY_STATE_ACTIVE}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_request_too_large_for_the_keys_tpm_leaves_none_of_it_in_the_window(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any], stream: bool
) -> None:
    """The key's tpm of 50 admits a request of 62 into its empty window; the upstream refuses it
    as larger than its own budget, reading nothing. Its estimate goes back, as a context-length
    refusal's does: the key serves the next, smaller request at once (not held back a minute
    by tokens nobody spent, which would be the cooling the refusal is spared)."""
    fake.state.set_scenario(Scenario(status=429, error_body=TPM_TOO_LARGE))
    router = await start_router(one_key(fake.base_url, state_section, 0, tpm=50))
    large = pb.ChatRequest(params=CONVERSATION)
    large.params.max_tokens = 10  # 62 tokens
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        if stream:
            request = pb.ChatStreamRequest(params=large.params)
            _ = [event async for event in router.stub.ChatStream(request)]
        else:
            await router.stub.Chat(large)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    fake.state.set_scenario(Scenario())
    after = await router.stub.Chat(hello(10))
    assert after.completion.choices[0].message.text == "Echo: hi"


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_body_over_the_upstreams_limit_leaves_none_of_it_in_the_window(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any], stream: bool
) -> None:
    """A 413 (the body over the upstream's size limit, refused before any model read it) read
    nothing either: the refused request's 62 tokens leave the key's tpm of 50, and the next,
    smaller request is served at once, not refused as the key at its limit for a minute."""
    fake.state.set_scenario(Scenario(status=413))
    router = await start_router(one_key(fake.base_url, state_section, 0, tpm=50))
    large = pb.ChatRequest(params=CONVERSATION)
    large.params.max_tokens = 10  # 62 tokens
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        if stream:
            _ = [
                event
                async for event in router.stub.ChatStream(pb.ChatStreamRequest(params=large.params))
            ]
        else:
            await router.stub.Chat(large)
    assert details_from_rpc_error(refused.value).upstream_status == 413
    fake.state.set_scenario(Scenario())
    after = await router.stub.Chat(hello(10))
    assert after.completion.choices[0].message.text == "Echo: hi"


def embedding(chars: int, *, listed: bool) -> pb.EmbedRequest:
    """An embeddings request on `chain` of one text of `chars` characters (chars / 4 + 1
    tokens), as `text` or as a list of one."""
    text = "x" * chars
    params = embeddings_pb2.EmbeddingParams(model="chain")
    if listed:
        params.texts.values.append(text)
    else:
        params.text = text
    return pb.EmbedRequest(params=params)


@pytest.mark.parametrize("listed", [False, True], ids=["text", "texts"])
async def test_an_embedding_too_large_for_the_keys_tpm_leaves_none_of_it_in_the_window(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any], listed: bool
) -> None:
    """As for a chat: the upstream read none of the refused embedding (41 tokens), and the
    key's tpm of 50 takes the next one (40 tokens) at once."""
    fake.state.set_scenario(Scenario(status=429, error_body=TPM_TOO_LARGE))
    router = await start_router(one_key(fake.base_url, state_section, 0, tpm=50))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Embed(embedding(160, listed=listed))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    fake.state.set_scenario(Scenario())
    after = await router.stub.Embed(embedding(156, listed=listed))
    assert len(after.result.data) == 1


async def test_a_held_back_retry_waits_for_nothing_while_another_deployment_is_free(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    """A deployment whose keys are at their limits is passed over while another may answer, and
    queued for only when none did: so is one whose shortened retry its key's rpm holds back.
    Beta, free, answers at once (shortening the conversation for its own window), not after
    alpha's queue (300 s on a clock nobody moves: the call's deadline is a hang guard)."""
    fake.state.set_scenario(Scenario(context_window=5))
    config = base_config(fake.base_url, state=state_section)
    config["providers"]["alpha"].update(keys=[{"key": "sk-alpha-1", "rpm": 2}], queue_timeout_s=300)
    router = await start_router(config, clock=ManualClock())
    request = pb.ChatRequest(params=CONVERSATION, routing=AUTO)
    answer = await router.stub.Chat(request, timeout=30)
    assert answer.route.deployment == "beta/model-b"
    assert outcomes(answer.route)[:2] == [Outcome.CONTEXT_TOO_LONG] * 2  # alpha's two tries
    assert answer.route.attempts[-1].outcome == Outcome.OK.value


async def test_a_held_back_retry_queued_for_goes_on_shortened(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    """Alpha's shortened retry is held back by its key's rpm of 2, and beta's one key is at its
    rpm of 1 already: nothing answered, so the request queues for alpha. When the key's minute
    moves on, the retry goes on where it was held (the third, shorter try), not from the whole
    input again: the two tries alpha refused are not sent, nor paid, twice (nor would the
    retry then be held back a second minute, past a queue_timeout_s of one)."""
    fake.state.set_scenario(Scenario(context_window=5), key="sk-alpha-1")
    config = base_config(fake.base_url, state=state_section)
    config["providers"]["alpha"].update(keys=[{"key": "sk-alpha-1", "rpm": 2}], queue_timeout_s=300)
    config["providers"]["beta"].update(keys=[{"key": "sk-beta-1", "rpm": 1}])
    config["models"]["solo-b"] = {"deployments": [{"provider": "beta", "model": "model-b"}]}
    clock = ManualClock()
    router = await start_router(config, clock=clock)
    spent = hello(10)
    spent.params.model = "solo-b"
    await router.stub.Chat(spent)  # beta's rpm of 1, spent
    asked = asyncio.ensure_future(
        router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=AUTO))
    )
    await _waiting(router, 1)
    assert fake.state.count(path="/chat/completions", key="sk-alpha-1") == 2
    clock.advance(120.0)  # alpha's rpm window moves on

    async def answered_or_resent() -> bool:  # resent: held back again, for a minute nobody moves
        return asked.done() or fake.state.count(path="/chat/completions", key="sk-alpha-1") > 3

    await eventually(answered_or_resent, what="the queued retry answered")
    assert fake.state.count(path="/chat/completions", key="sk-alpha-1") == 3
    answer = await asked
    assert answer.route.deployment == "alpha/model-a"
    assert outcomes(answer.route) == [Outcome.CONTEXT_TOO_LONG] * 2 + [Outcome.OK]
    assert answer.route.truncated_messages == 6


async def test_held_back_retries_on_every_deployment_queue_once(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    """Alpha's and beta's shortened retries are both held back by their keys' rpm of 2: as for
    deployments at their limits, the request queues once, for the first (alpha), not first in
    place on beta, the last, and then again for alpha (twice queue_timeout_s before its 429)."""
    fake.state.set_scenario(Scenario(context_window=5))
    config = base_config(fake.base_url, state=state_section)
    for name in ("alpha", "beta"):
        key = {"key": f"sk-{name}-1", "rpm": 2}
        config["providers"][name].update(keys=[key], queue_timeout_s=300)
    clock = ManualClock()
    router = await start_router(config, clock=clock)
    asked = asyncio.ensure_future(
        router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=AUTO))
    )
    await _waiting(router, 1)  # alpha's: the queue
    assert router.runtime.pools["beta"].waiting == 0
    assert fake.state.count(path="/chat/completions") == 4  # two tries each
    clock.advance(120.0)  # the keys' rpm windows move on
    answer = await asked
    assert answer.route.deployment == "alpha/model-a"
    assert answer.route.truncated_messages == 6
    assert fake.state.count(path="/chat/completions", key="sk-alpha-1") == 3
