"""`RoutingOptions.truncation` over a real gRPC channel: AUTO answers an input past the
deployment's context window (the fake upstream's `context_window`, in words) by asking the same
deployment again with the oldest messages left out, a bounded number of times; the tool call a
kept tool result answers stays with it; unset or DISABLED, the upstream's 400 is the caller's."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.engine._truncation import MAX_TRUNCATIONS
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.outcomes import Outcome
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

AUTO = routing_pb2.RoutingOptions(truncation=routing_pb2.TRUNCATION_AUTO)
USER, ASSISTANT, TOOL = chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_TOOL


def message(role: chat_pb2.Role.ValueType, text: str) -> chat_pb2.ChatMessage:
    return chat_pb2.ChatMessage(role=role, text=text)


def words(n: int, word: str = "w") -> str:
    return " ".join([word] * n)


def called(call_id: str) -> chat_pb2.ChatMessage:
    call = chat_pb2.ToolCall(
        id=call_id, type="function", function=chat_pb2.FunctionCall(name="f", arguments="{}")
    )
    return chat_pb2.ChatMessage(role=ASSISTANT, tool_calls=[call])


def params(*messages: chat_pb2.ChatMessage) -> chat_pb2.ChatParams:
    system = message(chat_pb2.ROLE_SYSTEM, "be brief")
    return chat_pb2.ChatParams(model="chain", messages=[system, *messages])


def sent(fake: FakeUpstream) -> list[str]:
    """What the upstream's last call had, message by message (role: text)."""
    record = fake.state.last(path="/chat/completions")
    assert record is not None
    return [f"{m['role']}: {m.get('content') or ''}" for m in record.body["messages"]]


def outcomes(route: routing_pb2.RouteInfo) -> list[Outcome]:
    return [Outcome(attempt.outcome) for attempt in route.attempts]


# 2 + 6 * 4 + 2 = 28 words; a window of 12 takes the system message, one turn and the question.
CONVERSATION = params(
    *(message(USER if n % 2 == 0 else ASSISTANT, words(4, f"t{n}")) for n in range(6)),
    message(USER, "and now"),
)


async def test_auto_shortens_on_the_same_deployment(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(context_window=12))
    answer = await router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=AUTO))
    route = answer.route
    # Half of the six that may go, and the model's turn that would open it then.
    assert outcomes(route) == [Outcome.CONTEXT_TOO_LONG, Outcome.OK]
    assert {a.deployment for a in route.attempts} == {"alpha/model-a"}
    assert route.truncated_messages == 4
    assert sent(fake) == [
        "system: be brief",
        f"user: {words(4, 't4')}",
        f"assistant: {words(4, 't5')}",
        "user: and now",
    ]
    assert answer.completion.usage.prompt_tokens == 12


async def test_a_stream_is_shortened_before_its_first_chunk(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(context_window=12))
    request = pb.ChatStreamRequest(params=CONVERSATION, routing=AUTO)
    events = [event async for event in router.stub.ChatStream(request)]
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "route" and kinds[-1] == "summary" and "error" not in kinds
    assert events[-1].summary.route.truncated_messages == 4
    assert sent(fake)[-1] == "user: and now" and len(sent(fake)) == 4


@pytest.mark.parametrize("routing", [None, routing_pb2.TRUNCATION_DISABLED])
async def test_without_auto_the_context_error_is_the_callers(
    router: RouterHandle, fake: FakeUpstream, routing: int | None
) -> None:
    fake.state.set_scenario(Scenario(context_window=12))
    options = routing_pb2.RoutingOptions(truncation=routing)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=options))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(refused.value) == "CONTEXT_TOO_LONG"
    assert fake.state.count(path="/chat/completions") == 1


async def test_the_retries_are_bounded_and_the_last_keeps_only_what_must_stay(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    """A latest question past the window alone: each retry leaves out more, the last all that
    may go; then the context error, after 1 + MAX_TRUNCATIONS calls of the one deployment."""
    fake.state.set_scenario(Scenario(context_window=3))
    many = params(*(message(USER, words(2, f"q{n}")) for n in range(40)), message(USER, words(9)))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=many, routing=AUTO))
    assert reason(refused.value) == "CONTEXT_TOO_LONG"
    calls = fake.state.calls(path="/chat/completions")
    assert len(calls) == 1 + MAX_TRUNCATIONS
    assert {call.model for call in calls} == {"model-a"}
    assert [len(call.body["messages"]) for call in calls] == [42, 22, 12, 2]


async def test_a_tool_result_keeps_its_call_and_the_latest_question_stays(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    """An agent's loop: one question, then calls and their results. The oldest rounds go, each
    call with its result; the question and the last round stay."""
    fake.state.set_scenario(Scenario(context_window=15))
    rounds = [m for n in range(4) for m in (called(f"c{n}"), result(f"c{n}", words(5, f"r{n}")))]
    answer = await router.stub.Chat(
        pb.ChatRequest(params=params(message(USER, "look it up"), *rounds), routing=AUTO)
    )
    assert answer.route.truncated_messages == 4
    record = fake.state.last(path="/chat/completions")
    assert record is not None
    kept = record.body["messages"]
    assert [m["role"] for m in kept] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert [m["tool_calls"][0]["id"] for m in kept if m["role"] == "assistant"] == ["c2", "c3"]
    assert [m["tool_call_id"] for m in kept if m["role"] == "tool"] == ["c2", "c3"]


async def test_an_unknown_truncation_is_refused_naming_it(router: RouterHandle) -> None:
    options = routing_pb2.RoutingOptions(truncation=7)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=options))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(refused.value).openai_param == "routing.truncation"


def result(call_id: str, text: str) -> chat_pb2.ChatMessage:
    return chat_pb2.ChatMessage(role=TOOL, text=text, tool_call_id=call_id)


def reason(error: grpc.aio.AioRpcError) -> str:
    return details_from_rpc_error(error).reason


async def test_a_background_responses_unknown_truncation_is_refused_at_its_start(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    options = routing_pb2.RoutingOptions(truncation=7)  # type: ignore[arg-type]
    start = pb.StartBackgroundResponseRequest(
        chat=pb.ChatRequest(params=CONVERSATION, routing=options), response_json='{"id": "resp_x"}'
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.StartBackgroundResponse(start)
    assert details_from_rpc_error(refused.value).openai_param == "chat.routing.truncation"
    assert fake.state.count(path="/chat/completions") == 0  # no job queued to fail


OLD = words(10, "old")


def orphans(fake: FakeUpstream) -> list[str]:
    """The tool results the upstream's last call had without the call they answer before them
    (OpenAI's 400 "messages with role 'tool' must be a response to a preceding message with
    'tool_calls'"; Anthropic's and Gemini's likewise)."""
    record = fake.state.last(path="/chat/completions")
    assert record is not None
    made: set[str] = set()
    lost = []
    for m in record.body["messages"]:
        made |= {call["id"] for call in m.get("tool_calls") or []}
        if m["role"] == "tool" and m["tool_call_id"] not in made:
            lost.append(m["tool_call_id"])
    return lost


@pytest.mark.parametrize(
    ("conversation", "dropped"),
    [
        # A user message between a call and its result (a Responses input in that order).
        ([message(USER, OLD), called("c0"), message(USER, "and now"), result("c0", "ok")], 1),
        # Two calls in two assistant messages, then their results: each goes with its call.
        ([called("c0"), called("c1"), result("c0", OLD), result("c1", "ok")], 2),
    ],
    ids=["user-between", "calls-then-results"],
)
async def test_a_tool_result_is_never_sent_without_its_call(
    router: RouterHandle,
    fake: FakeUpstream,
    conversation: list[chat_pb2.ChatMessage],
    dropped: int,
) -> None:
    fake.state.set_scenario(Scenario(context_window=9))
    answer = await router.stub.Chat(pb.ChatRequest(params=params(*conversation), routing=AUTO))
    assert outcomes(answer.route) == [Outcome.CONTEXT_TOO_LONG, Outcome.OK]
    assert answer.route.truncated_messages == dropped  # the long old turn, with its call
    assert orphans(fake) == []
    assert not any(OLD in line for line in sent(fake))


async def test_a_refused_input_does_not_spend_the_keys_tpm_on_the_retry(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    """The key's tpm holds the request's estimate once, not twice: the context-length refusal
    read nothing of it (it gives the estimate back), so the shortened retry is not held back by
    the refused try's tokens, answered as `context_length_exceeded`."""
    fake.state.set_scenario(Scenario(context_window=12))
    solo = {"deployments": [{"provider": "alpha", "model": "model-a"}]}
    config = base_config(fake.base_url, models={"chain": solo})
    config["providers"]["alpha"]["keys"] = [{"key": "sk-alpha-1", "tpm": 100}]
    config["state"] = state_section  # one process's memory, or Redis
    router = await start_router(config)
    conversation = pb.ChatRequest(params=CONVERSATION, routing=AUTO)
    conversation.params.max_tokens = 10  # an estimate of 62 tokens: more than half of 100
    answer = await router.stub.Chat(conversation)
    assert outcomes(answer.route) == [Outcome.CONTEXT_TOO_LONG, Outcome.OK]
    assert answer.route.truncated_messages == 4


# Each provider's own refusal of an input past the model's context window, as it words it.
NATIVE_REFUSALS: dict[str, dict[str, Any]] = {
    "anthropic": {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 210000 tokens > 200000 maximum",
        },
    },
    # OpenAI's Responses API (a deployment's `api: responses`).
    "responses": {
        "error": {
            "message": "Your input exceeds the context window of this model. Please adjust your "
            "input and try again.",
            "type": "invalid_request_error",
            "param": "input",
            "code": "context_length_exceeded",
        }
    },
    "gemini": {
        "error": {
            "code": 400,
            "message": "The input token count (1200000) exceeds the maximum number of tokens "
            "allowed (1048576).",
            "status": "INVALID_ARGUMENT",
        }
    },
}


@pytest.mark.parametrize("kind", sorted(NATIVE_REFUSALS))
async def test_a_native_providers_context_refusal_is_shortened_too(
    fake: FakeUpstream, start_router: StartRouter, kind: str
) -> None:
    """Anthropic's, Gemini's and OpenAI's Responses API's words for it start the same retries
    as OpenAI's chat's."""
    fake.state.set_scenario(Scenario(status=400, error_body=NATIVE_REFUSALS[kind]))
    base = f"{fake.url}/v1beta" if kind == "gemini" else fake.base_url
    deployment = {"provider": kind, "model": f"{kind}-x"}
    if kind == "responses":
        deployment["api"] = "responses"
    config = base_config(fake.base_url, models={"chain": {"deployments": [deployment]}})
    provider_kind = "openai" if kind == "responses" else kind
    config["providers"] = {kind: {"kind": provider_kind, "base_url": base, "keys": ["k-native"]}}
    router = await start_router(config)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=CONVERSATION, routing=AUTO))
    assert reason(refused.value) == "CONTEXT_TOO_LONG"
    # The whole input, then half of the 6 turns that may go (and the model's turn that would
    # open it), then all of them: the latest question alone.
    turns = [
        len(call.body.get("messages") or call.body.get("contents") or call.body["input"])
        for call in fake.state.calls()
    ]
    system = 1 if kind == "responses" else 0  # an input item there, apart elsewhere
    assert turns == [7 + system, 3 + system, 1 + system]
