"""Where guardrails find texts beyond messages' content, without a server: a chat request's
names (not rewritable: a redact rule's find blocks), its `stop`, `user` and `metadata` values,
the unmodelled keys of its tool calls and content parts, reasoning handed back (a signed
thinking block is not rewritable), and the reasoning an answer carries, unary and streamed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients import chat_params_from_openai
from clients.switchboard.v1 import chat_pb2
from router_service.config import GuardrailConfig
from router_service.errors import GuardrailBlockedError
from router_service.guardrails import AnswerGuard, Guardrails, Rule, chat_texts

pytestmark = pytest.mark.timeout(30)

EMAIL = "jane@example.com"
PII = {"name": "pii", "detect": ["email"], "action": "redact"}
CODENAME = {"name": "codename", "patterns": ["(?i)falcon"], "action": "redact"}
PROSE = "Let me think about what the caller wants here, step by step. "


def _params(body: dict[str, Any]) -> chat_pb2.ChatParams:
    params, _ = chat_params_from_openai({"model": "m", **body})
    return params


def _screen(params: chat_pb2.ChatParams, *rules: dict[str, Any]) -> tuple[str, ...]:
    guardrails = Guardrails([GuardrailConfig.model_validate(r) for r in rules])
    return guardrails.screen(chat_texts(params), "", "m")


def _call(name: str, **extra: Any) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": "{}"}, **extra}


def test_options_names_and_unmodelled_keys_are_texts_by_path() -> None:
    params = _params(
        {
            "messages": [
                {"role": "user", "name": "jane", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "tool_calls": [_call("lookup", note="n")]},
            ],
            "tools": [{"type": "function", "function": {"name": "lookup"}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            "stop": ["END", "STOP"],
            "user": "u1",
            "metadata": {"b": "2", "a": "1"},
        }
    )
    params.messages[0].parts.parts[0].extra_json = '{"cache_control": {"type": "ephemeral"}}'
    slots = list(chat_texts(params))
    assert [
        (s.path, s.rewritable)
        for s in slots
        if s.path != "messages[1].tool_calls[0].function.arguments"
    ] == [
        ("messages[0].content[0].text", True),
        ("messages[0].name", False),
        ("messages[0].content[0].cache_control.type", True),
        ("messages[1].tool_calls[0].function.name", False),
        ("messages[1].tool_calls[0].note", True),
        ("tools[0].function.name", False),
        ("stop[0]", True),
        ("stop[1]", True),
        ("user", True),
        ("metadata.a", True),
        ("metadata.b", True),
        ("tool_choice.function.name", False),
    ]


def test_stop_user_and_metadata_are_redacted_in_place() -> None:
    params = _params(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "stop": f"bye {EMAIL}",
            "user": EMAIL,
            "metadata": {"owner": EMAIL},
        }
    )
    assert _screen(params, PII) == ("pii",)
    assert params.stop_text == "bye [REDACTED:email]"
    assert params.user == "[REDACTED:email]"
    assert dict(params.metadata) == {"owner": "[REDACTED:email]"}


FALCON: Any = {"type": "function", "function": {"name": "falcon_db"}}
ALLOWED: Any = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [FALCON]}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [FALCON]}, "tools[0].function.name"),
        ({"tool_choice": FALCON}, "tool_choice.function.name"),
        ({"tool_choice": ALLOWED}, "tool_choice.allowed_tools.tools[0].function.name"),
    ],
)
def test_a_redact_rule_finding_a_name_blocks_the_call(body: dict[str, Any], param: str) -> None:
    params = _params({"messages": [{"role": "user", "content": "hi"}], **body})
    with pytest.raises(GuardrailBlockedError) as caught:
        _screen(params, CODENAME)
    assert (caught.value.guardrail, caught.value.param) == ("codename", param)


def test_reasoning_handed_back_is_redacted_unless_signed() -> None:
    assistant = {"role": "assistant", "content": "ok", "reasoning_content": f"mail {EMAIL}"}
    params = _params({"messages": [{"role": "user", "content": "hi"}, assistant]})
    assert _screen(params, PII) == ("pii",)
    assert orjson.loads(params.messages[1].extra_json) == {
        "reasoning_content": "mail [REDACTED:email]"
    }
    block = {"type": "thinking", "thinking": f"mail {EMAIL}", "signature": "c2ln"}
    signed = {"role": "assistant", "content": "ok", "thinking_blocks": [block]}
    params = _params({"messages": [{"role": "user", "content": "hi"}, signed]})
    with pytest.raises(GuardrailBlockedError) as caught:
        _screen(params, PII)
    assert caught.value.param == "messages[1].thinking_blocks[0].thinking"


def _rule(config: dict[str, Any]) -> Rule:
    return Rule(GuardrailConfig.model_validate({**config, "apply_to": ["response"]}))


def _answer(**extra: Any) -> chat_pb2.ChatCompletion:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_ASSISTANT, text="fine")
    message.extra_json = orjson.dumps(extra).decode()
    return chat_pb2.ChatCompletion(choices=[chat_pb2.Choice(index=0, message=message)])


def test_an_answers_reasoning_is_redacted_and_a_signed_block_withholds_the_choice() -> None:
    details = [{"type": "reasoning.summary", "summary": f"asked {EMAIL}"}]
    answer = _answer(reasoning_content=f"mail {EMAIL}", reasoning_details=details, other=EMAIL)
    assert AnswerGuard((_rule(PII),)).completion(answer) == ("pii",)
    assert orjson.loads(answer.choices[0].message.extra_json) == {
        "reasoning_content": "mail [REDACTED:email]",
        "reasoning_details": [{"type": "reasoning.summary", "summary": "asked [REDACTED:email]"}],
        "other": EMAIL,  # not reasoning: an unmodelled key of the answer's own
    }
    block = {"type": "thinking", "thinking": f"mail {EMAIL}", "signature": "c2ln"}
    signed = _answer(thinking_blocks=[block])
    AnswerGuard((_rule(PII),)).completion(signed)
    [choice] = signed.choices
    assert choice.finish_reason == chat_pb2.FINISH_REASON_CONTENT_FILTER
    assert not choice.message.extra_json


def _delta(
    final: bool = False, text: str | None = None, **extra: Any
) -> chat_pb2.ChatCompletionChunk:
    delta = chat_pb2.ChatMessage(extra_json=orjson.dumps(extra).decode() if extra else "")
    if text is not None:
        delta.text = text
    choice = chat_pb2.ChunkChoice(index=0, delta=delta)
    if final:
        choice.finish_reason = chat_pb2.FINISH_REASON_STOP
    return chat_pb2.ChatCompletionChunk(choices=[choice])


def test_streamed_reasoning_is_redacted_across_deltas_and_released_before_the_answer() -> None:
    reasoning = PROSE * 2 + f"write to {EMAIL} later. " + PROSE * 2
    # `"content": ""` beside each piece, as some servers send it: no answer yet.
    chunks = [_delta(text="", reasoning_content=char) for char in reasoning]
    chunks += [_delta(text="The answer."), _delta(final=True)]
    out = AnswerGuard((_rule(PII),)).stream(1).chunks(chunks)
    order = []
    for chunk in out:
        delta = chunk.choices[0].delta
        if delta.extra_json:
            order.append(("reasoning", orjson.loads(delta.extra_json)["reasoning_content"]))
        if delta.text:
            order.append(("content", delta.text))
    kinds = [kind for kind, _ in order]
    assert kinds.count("content") == 1 and kinds[-1] == "content"  # the reasoning came first
    assert "".join(text for kind, text in order if kind == "reasoning") == reasoning.replace(
        EMAIL, "[REDACTED:email]"
    )
