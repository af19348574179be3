"""An OpenAI-compatible upstream that streams tool calls without `index` for more than one
choice (`n`): each choice numbers its own calls, as OpenAI's do, and a delta of no id continues
the call its own choice last named. The choices shared one count: the second choice's first
call was its index 1, and a continuation of the first choice's call went to the second's."""

from __future__ import annotations

from typing import Any

from tests.conftest import StartRouter
from tests.e2e.chat_script import call, chunk, scripted_sdk
from tests.e2e.stream_harness import StartEdge

WEATHER = {"name": "weather", "arguments": '{"city":"Paris"}'}
TIME = {"name": "time", "arguments": '{"city":"Rome"}'}


def of_choice(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    said = chunk(delta)
    said["choices"][0]["index"] = index
    return said


CHUNKS = [
    of_choice(0, {"role": "assistant", **call({**WEATHER, "arguments": ""}, id="call_1")}),
    of_choice(1, {"role": "assistant", **call({**TIME, "arguments": ""}, id="call_2")}),
    of_choice(0, call({"arguments": WEATHER["arguments"]})),
    of_choice(1, call({"arguments": TIME["arguments"]})),
    of_choice(0, {}) | {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    of_choice(1, {}) | {"choices": [{"index": 1, "delta": {}, "finish_reason": "tool_calls"}]},
]


async def test_each_choice_numbers_its_own_calls(
    start_router: StartRouter, start_edge: StartEdge
) -> None:
    calls: dict[tuple[int, int], dict[str, str]] = {}
    async with scripted_sdk(CHUNKS, start_router, start_edge) as sdk:
        stream = await sdk.chat.completions.create(
            model="chain", messages=[{"role": "user", "content": "hi"}], stream=True, n=2
        )
        async for part in stream:
            for choice in part.choices:
                for piece in choice.delta.tool_calls or ():
                    assert piece.function is not None
                    key = (choice.index, piece.index)
                    said = calls.setdefault(key, {"name": "", "arguments": ""})
                    said["name"] += piece.function.name or ""
                    said["arguments"] += piece.function.arguments or ""
    assert calls == {(0, 0): WEATHER, (1, 0): TIME}


async def test_calls_of_one_delta_are_apart(
    start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Two calls in one delta's list, neither with an index nor an id: a list never names one
    call twice, so the second is the next call (it was the first's continuation)."""
    chunks = [
        chunk({"role": "assistant", "tool_calls": [{"function": WEATHER}, {"function": TIME}]}),
        chunk({}, "tool_calls"),
    ]
    async with scripted_sdk(chunks, start_router, start_edge) as sdk:
        async with sdk.responses.stream(model="chain", input="hi") as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_response()
    said = [(i.name, i.arguments) for i in final.output if i.type == "function_call"]
    assert said == [tuple(WEATHER.values()), tuple(TIME.values())]
