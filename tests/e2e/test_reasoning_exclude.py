"""OpenRouter's `reasoning.exclude` (and `include_reasoning: false`): the model reasons (its
upstream is asked to), the caller does not see it, unary or streamed, at the edge and on
gRPC; the usage still counts the reasoning tokens. An OpenRouter deployment takes the object as
it is (the native knob wins)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import httpx
import openai
import orjson
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as rs
from router_service.clock import ManualClock
from router_service.config import ProviderConfig
from router_service.engine._model import RequestContext
from router_service.engine._reasoning_off import without_reasoning
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.providers import ChatCall
from router_service.providers._openai import OpenAIAdapter
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import reasoning_read
from tests.e2e.test_reasoning_sdk import HELLO, config, received

REASONING, ANSWER = "Let me see it through.", "The answer."
EXCLUDED: dict[str, Any] = {"reasoning": {"effort": "low", "exclude": True}}
HIDING = (EXCLUDED, {"reasoning_effort": "low", "include_reasoning": False})
# An OpenAI-kind deployment (`reasoning_content`), a Claude one (a signed thinking block), a
# Gemini one (thought parts).
KINDS = ("gpt", "sonnet", "gemini")


def hidden_params() -> chat_pb2.ChatParams:
    """A "hello" to the `gpt` deployment, its reasoning hidden (`reasoning.exclude`)."""
    return chat_pb2.ChatParams(
        model="gpt",
        messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hello")],
        extra_json=orjson.dumps(EXCLUDED).decode(),
    )


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.fixture(autouse=True)
def reasoning(fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(reasoning=REASONING, content=ANSWER))


def _asked_to_reason(fake: FakeUpstream, model: str) -> None:
    """The upstream was asked to reason all the same."""
    body = received(fake)
    assert "reasoning" not in body and "include_reasoning" not in body
    if model == "gpt":
        assert body["reasoning_effort"] == "low"
    elif model == "sonnet":
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    else:
        assert body["generationConfig"]["thinkingConfig"]["includeThoughts"] is True


@pytest.mark.parametrize("extra", HIDING)
@pytest.mark.parametrize("model", KINDS)
async def test_an_excluded_answer_has_no_reasoning(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, extra: dict[str, Any]
) -> None:
    answer = await sdk.chat.completions.create(
        model=model, messages=HELLO, max_tokens=2000, extra_body=extra
    )

    message = answer.choices[0].message
    assert message.content == ANSWER
    shown = message.model_extra or {}
    assert not {"reasoning_content", "reasoning", "thinking_blocks"} & set(shown)
    _asked_to_reason(fake, model)
    if model == "gemini":  # the reasoning done is still counted
        assert answer.usage is not None and answer.usage.completion_tokens_details is not None
        assert answer.usage.completion_tokens_details.reasoning_tokens == len(REASONING.split())


@pytest.mark.parametrize("extra", HIDING)
@pytest.mark.parametrize("model", KINDS)
async def test_an_excluded_stream_has_no_reasoning(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, extra: dict[str, Any]
) -> None:
    stream = await sdk.chat.completions.create(
        model=model, messages=HELLO, max_tokens=2000, stream=True, extra_body=extra
    )
    chunks = [chunk async for chunk in stream]

    deltas = [c.delta for chunk in chunks for c in chunk.choices]
    assert "".join(d.content or "" for d in deltas) == ANSWER
    for delta in deltas:
        shown = delta.model_extra or {}
        assert not {"reasoning_content", "reasoning", "thinking_blocks"} & set(shown)
    _asked_to_reason(fake, model)


async def test_the_same_call_without_exclude_shows_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    stream = await sdk.chat.completions.create(
        model="sonnet",
        messages=HELLO,
        max_tokens=2000,
        stream=True,
        extra_body={"reasoning": {"effort": "low", "exclude": False}},
    )
    _, thought, text = await reasoning_read(stream)
    assert (thought, text) == (REASONING, ANSWER)
    _asked_to_reason(fake, "sonnet")


async def test_a_grpc_stream_gets_no_reasoning(router: RouterHandle, fake: FakeUpstream) -> None:
    params = hidden_params()
    text, extras = "", []
    async for event in router.stub.ChatStream(rs.ChatStreamRequest(params=params)):
        for chunk in [event.chunk] if event.HasField("chunk") else []:
            text += "".join(c.delta.text for c in chunk.choices)
            extras += [c.delta.extra_json for c in chunk.choices if c.delta.extra_json]
    assert text == ANSWER and extras == []
    _asked_to_reason(fake, "gpt")


async def bodies_at(urls: tuple[str, ...], model: str, extra: Any) -> list[dict[str, Any]]:
    """The chat body a `kind: openai` provider at each of `urls` writes for `extra`."""
    params = chat_pb2.ChatParams(
        messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hello")],
        extra_json=orjson.dumps(extra).decode(),
    )
    call = ChatCall(model, "sk-key", params, 10.0)
    async with httpx.AsyncClient() as http:
        configs = [{"kind": "openai", "base_url": url, "keys": ["sk-key"]} for url in urls]
        adapters = [
            OpenAIAdapter("p", ProviderConfig.model_validate(c), http, ManualClock())
            for c in configs
        ]
        return [adapter._chat_body(call) for adapter in adapters]


async def test_an_openrouter_deployment_takes_the_object_as_it_is() -> None:
    """OpenRouter's own API (by its base_url's host) gets the caller's object and
    `include_reasoning` unchanged; another OpenAI-format upstream gets the effort."""
    extra = {"reasoning": {"max_tokens": 3000, "exclude": True}, "include_reasoning": False}
    urls = ("https://openrouter.ai/api/v1", "https://api.openai.com/v1")
    at_openrouter, at_openai = await bodies_at(urls, "anthropic/claude-sonnet-4.5", extra)
    assert {k: at_openrouter[k] for k in extra} == extra
    assert "reasoning_effort" not in at_openrouter
    assert not set(extra) & set(at_openai) and at_openai["reasoning_effort"] == "medium"


async def test_an_openrouter_deployment_without_reasoning_gets_neither_key() -> None:
    """`reasoning: false` at OpenRouter: neither the object nor the older `include_reasoning`
    reaches it (the exclusion is the engine's, read from the caller's params)."""
    extra = {"reasoning": {"effort": "high"}, "include_reasoning": True, "user": "u1"}
    params = chat_pb2.ChatParams(extra_json=orjson.dumps(extra).decode())
    kept = orjson.loads(without_reasoning(params).extra_json)
    [at_openrouter] = await bodies_at(("https://openrouter.ai/api/v1",), "openai/gpt-4o", kept)
    assert "reasoning" not in at_openrouter and "include_reasoning" not in at_openrouter
    assert at_openrouter["user"] == "u1" and "reasoning_effort" not in at_openrouter


async def test_a_hidden_thinking_stream_still_beats(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """While the reasoning streams in, hidden, the caller is sent nothing of it; past a heartbeat
    interval of that (the upstream not quiet, so the guard has no silence to beat for), the
    router sends a heartbeat, as it would for a quiet upstream: a proxy's idle timeout does not
    cut a stream that is thinking."""
    clock = ManualClock()
    router = await start_router(config(fake), clock=clock)
    # A word a chunk; more after the hold than the guard's read-ahead (32), so the first batch
    # after it is all reasoning however fast the rest comes.
    thinking = " ".join(f"step{i}" for i in range(40))
    fake.state.set_scenario(Scenario(reasoning=thinking, content=ANSWER, held_after_chunks=3))
    params = hidden_params()
    call = router.stub.ChatStream(rs.ChatStreamRequest(params=params))
    events = aiter(call)
    await fake.state.wait_for(lambda: fake.state.held == 1)
    # Only hidden reasoning so far: the stream is not committed (a failure would fail over)
    # until a heartbeat interval (15 s) of it; then the caller is sent the route.
    clock.advance(16.0)
    assert (await anext(events)).WhichOneof("event") == "route"
    clock.advance(16.0)  # past another interval, all of it spent thinking
    fake.state.release()

    kinds, text = [], ""
    async for event in events:
        kind = event.WhichOneof("event")
        for chunk in [event.chunk] if event.HasField("chunk") else []:
            said = "".join(c.delta.text for c in chunk.choices)
            kind, text = ("text" if said else kind), text + said
        kinds.append(kind)
    assert text == ANSWER
    assert kinds.count("heartbeat") == 1  # one interval of thinking, one heartbeat
    assert kinds.index("heartbeat") < kinds.index("text")  # sent while it was thinking


async def test_a_caller_gone_at_the_route_of_a_thinking_stream_leaves_no_read_behind(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The stream commits after a heartbeat interval of hidden thinking with a read of the
    upstream still awaited; a caller that leaves as it is sent the route (the servicer's
    generator closed at its first event) leaves no task reading the closed upstream call, nor
    its failure unretrieved ("Task exception was never retrieved" in the logs)."""
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    clock = ManualClock()
    router = await start_router(config(fake), clock=clock)
    fake.state.set_scenario(Scenario(reasoning=REASONING, content=ANSWER, held_after_chunks=3))
    params = hidden_params()
    try:
        stream = router.runtime.executor.chat_stream(params, RequestContext("gpt", clock))
        route = asyncio.ensure_future(anext(stream))
        await fake.state.wait_for(lambda: fake.state.held == 1)
        clock.advance(16.0)  # past the heartbeat interval: the stream commits
        assert (await route).WhichOneof("event") == "route"
        await stream.aclose()  # the caller left as it was sent the route

        await fake.state.wait_for(lambda: fake.state.records[-1].client_disconnected)
        fake.state.release()
        await fake.state.wait_idle()
        gc.collect()  # an unretrieved failure is reported when its task is collected
        await asyncio.sleep(0)
        assert not [t for t in asyncio.all_tasks() if "hidden" in repr(t.get_coro())]
        assert not unhandled
    finally:
        loop.set_exception_handler(None)


def _tool_loop(blocks: list[dict[str, Any]] | None) -> Any:
    """A conversation continuing a tool call: the assistant's turn (with `blocks`, its signed
    thinking, when the caller had them to give back), then the tool's result."""
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    turn: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
    if blocks is not None:
        turn["thinking_blocks"] = blocks
    return [*HELLO, turn, {"role": "tool", "tool_call_id": "call_1", "content": "42"}]


@pytest.mark.parametrize("model", ["sonnet", "br-claude"])
async def test_a_tool_loop_whose_thinking_was_hidden_goes_on_without_thinking(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    """The caller never saw the thinking blocks of the turn that called the tool, so it cannot
    give them back, and Claude refuses thinking on then ("a final assistant message must start
    with a thinking block", a 400): the turn goes on without thinking; with the blocks given
    back (reasoning shown), it thinks."""
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    sent = []
    signed = [{"type": "thinking", "thinking": "Hm.", "signature": "sig"}]
    for blocks in (None, signed):
        answer = await sdk.chat.completions.create(
            model=model,
            messages=_tool_loop(blocks),
            tools=[tool],  # type: ignore[list-item]
            max_tokens=2000,
            extra_body=EXCLUDED,
        )
        assert answer.choices[0].message.content == ANSWER
        body = received(fake)
        sent.append(body.get("additionalModelRequestFields", body).get("thinking"))
    assert sent == [None, {"type": "enabled", "budget_tokens": 1024}]
