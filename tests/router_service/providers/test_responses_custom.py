"""Custom tools and carried reasoning items on the Responses API dialect (_responses_custom.py):
the request, the answer, the stream, and which refusals drop the reasoning for a retry."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from router_service.clock import SYSTEM_CLOCK
from router_service.config import ProviderConfig
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import ADAPTERS
from router_service.providers._openai import OpenAIAdapter
from router_service.providers._responses_answer import completion_from_response
from router_service.providers._responses_custom import rejects_reasoning
from router_service.providers._responses_map import request_body
from router_service.providers._responses_stream import ResponsesStream

GRAMMAR: Any = {"type": "grammar", "grammar": {"syntax": "lark", "definition": "start: X"}}
TOOL: Any = {"type": "custom", "custom": {"name": "apply_patch", "format": GRAMMAR}}
KEPT: Any = {"id": "rs_1", "summary": [], "encrypted_content": "gAAA1"}
MESSAGES: Any = [
    {"role": "user", "content": "patch"},
    {"role": "assistant", "content": None, "reasoning_items": [KEPT], "tool_calls": [
        {"id": "c1", "type": "custom", "custom": {"name": "apply_patch", "input": "P"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "done"},
]  # fmt: skip


def test_custom_tools_calls_and_reasoning_go_as_the_responses_api_s_own() -> None:
    chat = {"model": "m", "messages": MESSAGES, "tools": [TOOL], "include": ["x"],
            "tool_choice": {"type": "custom", "custom": {"name": "apply_patch"}}}  # fmt: skip
    body = request_body(chat, stream=False)

    assert body["tools"] == [
        {"type": "custom", "name": "apply_patch",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: X"}}
    ]  # fmt: skip
    assert body["tool_choice"] == {"type": "custom", "name": "apply_patch"}
    assert body["include"] == ["x"]
    assert body["input"][1:] == [
        {"type": "reasoning", **KEPT},
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "P"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
    ]
    without = request_body(chat, stream=False, reasoning=False)["input"]
    assert [item.get("type") for item in without] == [
        *("message", "custom_tool_call", "custom_tool_call_output")
    ]


def test_the_answer_s_custom_call_and_encrypted_reasoning() -> None:
    reasoning = {"type": "reasoning", **KEPT, "summary": [{"type": "summary_text", "text": "S"}]}
    call = {"type": "custom_tool_call", "id": "ctc_1", "call_id": "c1", "name": "apply_patch",
            "input": "P", "status": "completed"}  # fmt: skip
    answer = completion_from_response(
        {"id": "resp_1", "status": "completed", "output": [reasoning, call]}
    )

    message = answer["choices"][0]["message"]
    assert message["tool_calls"] == [
        {"id": "c1", "type": "custom", "custom": {"name": "apply_patch", "input": "P"}}
    ]
    # where it stood: before the first output item (the call)
    assert message["reasoning_items"] == [{**KEPT, "summary": reasoning["summary"], "precedes": 0}]
    assert answer["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("keep", [True, False])
def test_the_stream_s_custom_call_and_reasoning_items(keep: bool) -> None:
    stream = ResponsesStream("m", 1, keep_reasoning=keep)
    reasoning = {"type": "reasoning", **KEPT}
    call = {"type": "custom_tool_call", "id": "ctc_1", "call_id": "c1", "name": "apply_patch"}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": "resp_1"}},
        {"type": "response.output_item.added", "item": {"type": "reasoning", "id": "rs_1"}},
        {"type": "response.output_item.done", "item": reasoning},
        {"type": "response.output_item.added", "item": call},
        {"type": "response.custom_tool_call_input.delta", "item_id": "ctc_1", "delta": "P"},
    ]
    deltas = [c["choices"][0]["delta"] for e in events for c in stream.feed(e)][1:]

    items = [{"reasoning_items": [{"id": "rs_1"}]}, {"reasoning_items": [KEPT]}] if keep else []
    assert deltas == [
        *items,
        {"tool_calls": [{"index": 0, "id": "c1", "type": "custom",
                         "custom": {"name": "apply_patch", "input": ""}}]},
        {"tool_calls": [{"index": 0, "custom": {"input": "P"}}]},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "error", "rejects"),
    [
        (400, {"code": "invalid_encrypted_content", "message": "could not be verified."}, True),
        (400, {"message": "The encrypted content gAAA...== could not be verified."}, True),
        (400, {"message": "Item with id 'rs_123' not found. Items are not persisted…"}, True),
        (400, {"message": "Invalid 'input[2].summary': expected an array."}, False),
        (500, {"code": "invalid_encrypted_content", "message": "?"}, False),
    ],
)
def test_which_refusals_are_of_the_reasoning(status: int, error: Any, rejects: bool) -> None:
    failure = UpstreamFailure(
        Outcome.BAD_REQUEST, "x", upstream_status=status, upstream_error=error
    )
    assert rejects_reasoning(failure) is rejects


@pytest.mark.parametrize(
    ("base_url", "configured", "takes"),
    [
        ("https://api.openai.com/v1", None, True),
        ("https://API.OpenAI.com:443/v1", None, True),
        ("https://eu.api.openai.com/v1", None, True),  # a data residency host
        ("http://vllm.internal:8000/v1", None, False),
        ("https://api.openai.com.evil.test/v1", None, False),
        ("http://vllm.internal:8000/v1", True, True),
        ("https://api.openai.com/v1", False, False),
    ],
)
def test_who_takes_custom_tools_natively(
    base_url: str, configured: bool | None, takes: bool
) -> None:
    """OpenAI's own host takes them; any other OpenAI-compatible server gets them emulated
    unless its provider says otherwise (`custom_tools`)."""
    config = ProviderConfig(
        kind="openai",
        base_url=base_url,
        keys=["sk-one"],  # type: ignore[list-item]
        custom_tools=configured,
    )
    adapter = OpenAIAdapter("p", config, httpx.AsyncClient(), SYSTEM_CLOCK)
    assert adapter.takes_custom_tools is takes


@pytest.mark.parametrize(
    ("base_url", "configured", "runs"),
    [
        ("https://api.groq.com/openai/v1", None, {"openai_hosted:code_interpreter"}),
        ("https://api.openai.com/v1", None, set()),
        ("http://vllm.internal:8000/v1", None, set()),
        ("http://vllm.internal:8000/v1", ["web_search"], {"openai_hosted:web_search"}),
        ("https://api.groq.com/openai/v1", [], set()),
    ],
)
def test_which_hosted_tools_a_compatible_server_runs(
    base_url: str, configured: list[str] | None, runs: set[str]
) -> None:
    """Groq's API runs `code_interpreter` on its chat completions; any other server, what its
    provider names (`hosted_tools`); OpenAI's chat API none (its Responses API runs them)."""
    config = ProviderConfig(
        kind="openai",
        base_url=base_url,
        keys=["sk-one"],  # type: ignore[list-item]
        hosted_tools=configured,
    )
    adapter = OpenAIAdapter("p", config, httpx.AsyncClient(), SYSTEM_CLOCK)
    assert adapter.server_tools == runs


@pytest.mark.parametrize(
    ("kind", "base_url", "serves"),
    [
        ("openai", "https://api.openai.com/v1", True),
        ("openai", "https://api.openai.com.evil.test/v1", False),
        ("openai", "http://vllm.internal:8000/v1", False),
        ("azure", "https://contoso.openai.azure.com", True),
    ],
)
def test_who_serves_every_chat_model_on_the_responses_api(
    kind: str, base_url: str, serves: bool
) -> None:
    """OpenAI itself (its host, or Azure): a chat deployment there takes hosted tools on the
    Responses API; another OpenAI-compatible server does not."""
    config = ProviderConfig.model_validate({"kind": kind, "base_url": base_url, "keys": ["k"]})
    adapter = ADAPTERS[kind].for_provider("p", config, httpx.AsyncClient(), SYSTEM_CLOCK)
    assert adapter.serves_responses_api is serves
