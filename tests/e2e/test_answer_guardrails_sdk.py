"""Answer-side guardrails as an OpenAI SDK user sees them through the edge: a redacted answer
carries `[REDACTED:<detector>]` and `x-switchboard-guardrails`; a withheld one is a 200 whose
choice has no content and finish_reason `content_filter` (unary and streamed), for chat
completions, legacy completions and the Responses API. The fake upstream echoes the caller's
last message, so a response-only rule sees the secret come back."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
from aiohttp import web

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.background import settled
from tests.e2e.conftest import Guarded
from tests.e2e.stream_harness import StartEdge
from tests.helpers import serve_app

pytestmark = pytest.mark.timeout(60)

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "jane@example.com"
GUARDRAILS = [
    {"name": "answer-pii", "detect": ["email"], "action": "redact", "apply_to": ["response"]},
    {"name": "answer-keys", "detect": ["api_key"], "action": "block", "apply_to": ["response"]},
]
PROSE = "and then the answer goes on for a while, as answers do. "


@pytest.fixture
async def stack(guarded_sdk: Guarded) -> tuple[RouterHandle, openai.AsyncOpenAI]:
    return await guarded_sdk(GUARDRAILS)


@pytest.fixture
def sdk(stack: tuple[RouterHandle, openai.AsyncOpenAI]) -> openai.AsyncOpenAI:
    return stack[1]


def _user(text: str) -> Any:
    return [{"role": "user", "content": text}]


async def test_a_redacted_chat_answer_says_so(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain", messages=_user(f"mail {EMAIL}")
    )
    assert raw.headers["x-switchboard-guardrails"] == "answer-pii"
    answer = raw.parse()
    assert answer.choices[0].message.content == "Echo: mail [REDACTED:email]"
    [call] = fake.state.calls()
    assert call.body["messages"][0]["content"] == f"mail {EMAIL}"  # the request untouched


async def test_a_withheld_chat_answer_is_a_200_with_content_filter(
    sdk: openai.AsyncOpenAI,
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain", messages=_user(f"key {AWS_KEY}")
    )
    assert raw.status_code == 200
    assert raw.headers["x-switchboard-guardrails"] == "answer-keys"
    assert AWS_KEY not in raw.http_response.text
    [choice] = raw.parse().choices
    assert choice.finish_reason == "content_filter"
    assert choice.message.content is None


async def test_a_streamed_answer_is_redacted_and_a_withheld_one_ends_with_content_filter(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    text = PROSE * 2 + f"mail {EMAIL} today. " + PROSE * 2
    fake.state.set_scenario(Scenario(content=text))
    stream = await sdk.chat.completions.create(model="chain", messages=_user("hi"), stream=True)
    pieces, finishes = [], []
    async for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finishes.append(choice.finish_reason)
    assert "".join(pieces) == text.replace(EMAIL, "[REDACTED:email]")
    assert finishes[-1] == "stop"
    before = PROSE * 3 + "Here: "
    fake.state.set_scenario(Scenario(content=f"{before}{AWS_KEY} " + PROSE * 4))
    stream = await sdk.chat.completions.create(model="chain", messages=_user("hi"), stream=True)
    chunks = [chunk async for chunk in stream]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content and before.startswith(content)  # some of what came before the key
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert AWS_KEY not in str(chunks)


async def test_legacy_completions_are_screened(sdk: openai.AsyncOpenAI) -> None:
    redacted = await sdk.completions.create(model="chain", prompt=f"mail {EMAIL}")
    assert redacted.choices[0].text == "Echo: mail [REDACTED:email]"
    withheld = await sdk.completions.create(model="chain", prompt=f"key {AWS_KEY}")
    assert withheld.choices[0].finish_reason == "content_filter"
    assert withheld.choices[0].text == ""


async def test_the_responses_api_is_screened(sdk: openai.AsyncOpenAI) -> None:
    redacted = await sdk.responses.create(model="chain", input=f"mail {EMAIL}", store=False)
    assert redacted.output_text == "Echo: mail [REDACTED:email]"
    withheld = await sdk.responses.create(model="chain", input=f"key {AWS_KEY}", store=False)
    assert withheld.status == "incomplete"
    assert withheld.incomplete_details is not None
    assert withheld.incomplete_details.reason == "content_filter"
    assert AWS_KEY not in withheld.output_text
    stream = await sdk.responses.create(
        model="chain", input=f"key {AWS_KEY}", store=False, stream=True
    )
    events = [event async for event in stream]
    last: Any = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "content_filter"
    assert AWS_KEY not in str(events)


async def test_a_background_response_is_screened_as_a_foreground_one(
    stack: tuple[RouterHandle, openai.AsyncOpenAI],
) -> None:
    router, sdk = stack
    started = await sdk.responses.create(model="chain", input=f"mail {EMAIL}", background=True)
    redacted = await settled(sdk, started.id, router.server)
    assert redacted.output_text == "Echo: mail [REDACTED:email]"
    started = await sdk.responses.create(model="chain", input=f"key {AWS_KEY}", background=True)
    withheld = await settled(sdk, started.id, router.server)
    assert withheld.status == "incomplete" and AWS_KEY not in withheld.to_json()


async def test_a_streamed_transcript_is_screened_as_it_goes(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    words = PROSE * 4  # long enough that text is released before the end
    stream = await sdk.audio.transcriptions.create(
        model="chain",
        file=(f"{words}{EMAIL}.wav", b"RIFF0000", "audio/wav"),
        stream=True,
        include=["logprobs"],
    )
    events = [event async for event in stream]
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert done.text == f"{words}[REDACTED:email]: 8 bytes of audio/wav"
    assert "".join(deltas) == done.text and len(deltas) > 1  # released before the end
    assert done.logprobs is None  # their tokens are the raw text

    # A block rule's find ends the stream with an error; the key never reaches the caller.
    async with sdk.audio.transcriptions.with_streaming_response.create(
        model="chain", file=(f"{AWS_KEY}.wav", b"RIFF0000", "audio/wav"), stream=True
    ) as response:
        body = await response.text()
    assert AWS_KEY not in body
    error = orjson.loads(body.strip().split("\n\n")[-1].removeprefix("data: "))["error"]
    assert error["code"] == "content_policy_violation"
    assert "withheld by the guardrail 'answer-keys'" in error["message"]


async def test_a_transcript_answered_whole_to_a_streamed_call_is_screened(
    start_router: StartRouter, start_edge: StartEdge
) -> None:
    # `whisper-1` ignores `stream: true`: its whole JSON answer comes back, to be screened as
    # the unary answer is (never relayed unscreened for lack of events).
    said = {"text": f"mail {EMAIL}"}

    async def transcribe(request: web.Request) -> web.Response:
        if (await request.post()).get("response_format") == "text":
            return web.Response(text=said["text"], content_type="text/plain")
        return web.json_response(said)

    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", transcribe)
    async with serve_app(app) as base_url:
        router = await start_router(base_config(f"{base_url}/v1", guardrails=GUARDRAILS))
        edge = await start_edge(router)
        async with openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0
        ) as sdk:
            audio = ("a.wav", b"RIFF0000", "audio/wav")
            async with sdk.audio.transcriptions.with_streaming_response.create(
                model="chain", file=audio, stream=True
            ) as response:
                body = await response.text()
            assert orjson.loads(body) == {"text": "mail [REDACTED:email]"}
            said["text"] = f"key {AWS_KEY}"
            async with sdk.audio.transcriptions.with_streaming_response.create(
                model="chain", file=audio, stream=True
            ) as response:
                body = await response.text()
            assert AWS_KEY not in body
            assert "withheld by the guardrail 'answer-keys'" in body
            # So is a text body (`text`, `srt`, `vtt`), as without `stream`: not refused.
            said["text"] = f"mail {EMAIL}"
            async with sdk.audio.transcriptions.with_streaming_response.create(
                model="chain", file=audio, stream=True, response_format="text"
            ) as response:
                assert response.headers["content-type"].startswith("text/plain")
                assert await response.text() == "mail [REDACTED:email]"
            said["text"] = f"key {AWS_KEY}"
            async with sdk.audio.transcriptions.with_streaming_response.create(
                model="chain", file=audio, stream=True, response_format="text"
            ) as response:
                body = await response.text()
    assert AWS_KEY not in body
    assert "withheld by the guardrail 'answer-keys'" in body


async def test_a_streamed_transcript_of_no_deltas_keeps_its_done_text_screened(
    start_router: StartRouter, start_edge: StartEdge
) -> None:
    # An upstream whose stream says the transcript in its `done` event only (no deltas): the
    # caller gets that text, screened, not an empty one.
    async def transcribe(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        done = {"type": "transcript.text.done", "text": f"mail {EMAIL}"}
        await response.write(b"data: " + orjson.dumps(done) + b"\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", transcribe)
    async with serve_app(app) as base_url:
        router = await start_router(base_config(f"{base_url}/v1", guardrails=GUARDRAILS))
        edge = await start_edge(router)
        async with openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0
        ) as sdk:
            stream = await sdk.audio.transcriptions.create(
                model="chain", file=("a.wav", b"RIFF0000", "audio/wav"), stream=True
            )
            events = [event async for event in stream]
    assert [(e.type, getattr(e, "text", None)) for e in events] == [
        ("transcript.text.done", "mail [REDACTED:email]")
    ]


async def test_a_streamed_custom_tool_call_s_input_is_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # `chain`'s upstreams are OpenAI-compatible servers: the tool is emulated as a function.
    patch = f"{PROSE}mail {EMAIL}. {PROSE}"
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"input": patch}))
    tool: Any = {"type": "custom", "name": "apply_patch", "description": "Edits files."}
    stream = await sdk.responses.create(model="chain", input="patch", tools=[tool], stream=True)
    events = [event async for event in stream]

    deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
    [call] = [e.item for e in events if e.type == "response.output_item.done"]
    assert call.type == "custom_tool_call"
    assert "".join(deltas) == call.input == f"{PROSE}mail [REDACTED:email]. {PROSE}"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_find_on_a_line_of_its_own_in_tool_call_arguments_is_caught(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    # Arguments are JSON: a line break in a string is the escape `\n`, whose `n` must not hide
    # the key after it (as a letter before it would), nor an email's redaction eat into it.
    tool: Any = {"type": "function", "function": {"name": "send", "parameters": {}}}
    body = f"{PROSE}Regards,\n{EMAIL}\n{PROSE}"
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"body": body}))
    calls = await _tool_calls(sdk, stream, tool)
    assert orjson.loads(calls[0])["body"] == body.replace(EMAIL, "[REDACTED:email]")

    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"body": f"Key:\n{AWS_KEY}"}))
    assert await _tool_calls(sdk, stream, tool) == []  # withheld: content_filter
    key = "sk-proj-" + "a1B2c3D4e5" * 4
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"body": f"Key:\n{key}"}))
    assert await _tool_calls(sdk, stream, tool) == []


async def _tool_calls(sdk: openai.AsyncOpenAI, stream: bool, tool: Any) -> list[str]:
    """The arguments of each tool call the answer makes (none when it was withheld)."""
    if not stream:
        answer = await sdk.chat.completions.create(
            model="chain", messages=_user("send it"), tools=[tool]
        )
        [choice] = answer.choices
        calls = choice.message.tool_calls or []
        assert (choice.finish_reason == "content_filter") == (not calls)
        return [call.function.arguments for call in calls]  # type: ignore[union-attr]
    chunks = await sdk.chat.completions.create(
        model="chain", messages=_user("send it"), tools=[tool], stream=True
    )
    arguments: dict[int, str] = {}
    finish = None
    async for chunk in chunks:
        for streamed in chunk.choices:
            finish = streamed.finish_reason or finish
            for call in streamed.delta.tool_calls or []:
                piece = call.function.arguments if call.function else None
                arguments[call.index] = arguments.get(call.index, "") + (piece or "")
    assert (finish == "content_filter") == (not arguments or not any(arguments.values()))
    return [text for _, text in sorted(arguments.items()) if finish != "content_filter"]
