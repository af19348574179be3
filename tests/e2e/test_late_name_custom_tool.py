"""A custom tool (Codex's `apply_patch`) emulated as a function on an OpenAI-compatible
upstream whose call says its arguments before its name (tests/e2e/test_late_tool_name.py):
the call is the caller's custom call, its input whole. The pieces before the name were said as
a function call's arguments, and the custom call's input was cut (`{"input":` lost)."""

from __future__ import annotations

from typing import Any

from tests.conftest import StartRouter
from tests.e2e.chat_script import call, chunk, scripted_sdk
from tests.e2e.stream_harness import StartEdge

PATCH = "*** Begin Patch\n*** End Patch\n"
ARGUMENTS = '{"input":"*** Begin Patch\\n*** End Patch\\n"}'
TOOLS: Any = [{"type": "custom", "name": "apply_patch", "description": "Edit files."}]


def script(named_at: int) -> list[dict[str, Any]]:
    """The call's arguments in three pieces, its name with piece `named_at` (3: never)."""
    pieces = [ARGUMENTS[:10], ARGUMENTS[10:20], ARGUMENTS[20:]]
    deltas = [{"arguments": piece} for piece in pieces]
    if named_at < len(deltas):
        deltas[named_at]["name"] = "apply_patch"
    return [
        chunk({"role": "assistant", "content": ""}),
        chunk(call(deltas[0], index=0, id="call_1", type="function")),
        *(chunk(call(delta, index=0)) for delta in deltas[1:]),
        chunk({}, "tool_calls"),
    ]


async def test_the_custom_call_has_its_whole_input(
    start_router: StartRouter, start_edge: StartEdge
) -> None:
    async with scripted_sdk(script(1), start_router, start_edge) as sdk:
        async with sdk.responses.stream(model="chain", input="hi", tools=TOOLS) as stream:
            events = [event async for event in stream]
            final = await stream.get_final_response()

    assert [i.type for i in final.output if i.type.endswith("call")] == ["custom_tool_call"]
    [item] = [i for i in final.output if i.type == "custom_tool_call"]
    assert (item.call_id, item.name, item.input) == ("call_1", "apply_patch", PATCH)
    deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == PATCH
    assert not [e for e in events if e.type.startswith("response.function_call")]


async def test_a_call_never_named_keeps_its_arguments(
    start_router: StartRouter, start_edge: StartEdge
) -> None:
    async with scripted_sdk(script(3), start_router, start_edge) as sdk:
        stream = await sdk.chat.completions.create(
            model="chain",
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "custom", "custom": {"name": "apply_patch"}}],
            stream=True,
        )
        said = ""
        async for part in stream:
            for piece in (part.choices[0].delta.tool_calls or ()) if part.choices else ():
                said += piece.function.arguments or "" if piece.function else ""
    assert said == ARGUMENTS
