"""A request built as OpenAI's Codex CLI builds it (codex-rs: instructions, developer and user
messages, its tools `shell`, `apply_patch` (a custom tool of a Lark grammar) and `update_plan`,
`store: false`, encrypted reasoning asked for), and a config with a deployment of each kind it
may reach behind the gateway."""

from __future__ import annotations

from typing import Any

import openai

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import base_config

LARK = 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\n'
PATCH = '*** Begin Patch\n*** Add File: hello.txt\n+Hello, "world" \\o/ ✓\n*** End Patch'
APPLY_PATCH: Any = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Use the `apply_patch` tool to edit files.",
    "format": {"type": "grammar", "syntax": "lark", "definition": LARK},
}
SHELL: Any = {
    "type": "function",
    "name": "shell",
    "description": "Runs a shell command and returns its output.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"command": {"type": "array", "items": {"type": "string"}}},
        "required": ["command"],
        "additionalProperties": False,
    },
}
UPDATE_PLAN: Any = {
    "type": "function",
    "name": "update_plan",
    "description": "Updates the task plan.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"plan": {"type": "array", "items": {"type": "object"}}},
        "required": ["plan"],
        "additionalProperties": False,
    },
}
OPENING: Any = [
    {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "<permissions>workspace-write</permissions>"}],
    },
    {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Add hello.txt saying hello"}],
    },
]
# Group → (its upstream model, the scenario of a turn that patches).
GROUPS = {
    "codex-chat": ("gpt-codex-chat", Scenario(tool_call=True, tool_name="apply_patch",
                                               tool_input=PATCH, reasoning="Patching.")),
    "codex-responses": ("gpt-codex-resp", Scenario(tool_call=True, tool_name="apply_patch",
                                                   tool_input=PATCH, reasoning="Patching.")),
    "codex-claude": ("claude-codex", Scenario(tool_call=True, tool_name="apply_patch",
                                              tool_arguments={"input": PATCH})),
    "codex-compatible": ("compatible-codex", Scenario(tool_call=True, tool_name="apply_patch",
                                                      tool_arguments={"input": PATCH})),
}  # fmt: skip


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = base_config(fake.base_url)
    out["providers"]["alpha"]["custom_tools"] = True  # as OpenAI's own API (beta: a compatible one)
    out["providers"]["claude"] = {"kind": "anthropic", "base_url": fake.base_url, "keys": ["ka"]}
    out["models"] |= {
        "codex-chat": {"deployments": [{"provider": "alpha", "model": "gpt-codex-chat"}]},
        "codex-responses": {
            "deployments": [{"provider": "alpha", "model": "gpt-codex-resp", "api": "responses"}]
        },
        "codex-claude": {"deployments": [{"provider": "claude", "model": "claude-codex"}]},
        "codex-compatible": {"deployments": [{"provider": "beta", "model": "compatible-codex"}]},
    }
    return out


def request(model: str, items: list[Any], *, stream: bool = True) -> dict[str, Any]:
    """The keyword arguments of `responses.create` for one Codex turn."""
    return {
        "model": model,
        "instructions": "You are Codex, a coding agent.",
        "input": items,
        "tools": [SHELL, APPLY_PATCH, UPDATE_PLAN],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-1",
        "text": {"verbosity": "low"},
        "stream": stream,
    }


async def streamed(sdk: openai.AsyncOpenAI, model: str, items: list[Any]) -> tuple[list[Any], Any]:
    """Every event of a streamed turn, and the Response it completed with."""
    stream = await sdk.responses.create(**request(model, items))
    events = [event async for event in stream]
    assert events[-1].type == "response.completed"
    return events, events[-1].response


def fed_back(output: list[Any]) -> list[Any]:
    """A turn's output items as Codex sends them back (their JSON, ids and status kept)."""
    return [item.model_dump(exclude_none=True) for item in output]
