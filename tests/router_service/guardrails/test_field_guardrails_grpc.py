"""Guardrails on tool definitions, pass-through fields and transcription (and translation)
answers, as a gRPC caller meets them: a real router on loopback, the fake upstream (which
records the bodies it got, and transcribes a file as "<filename>: <size> bytes of <type>"), real
channels. What the upstream received, what the caller got, and that no error, log line, metric
or span holds the matched text."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import orjson
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import chat_pb2, media_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from router_service.sessions import session_id_for, session_key
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import chat, chat_stream
from tests.router_service.auth.test_auth_grpc import audited

pytestmark = pytest.mark.timeout(60)

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "jane@example.com"
RULES: list[dict[str, Any]] = [
    {"name": "no-credentials", "detect": ["api_key"], "action": "block"},
    {"name": "pii", "detect": ["email"], "action": "redact", "models": ["chain"]},
    {
        "name": "answer-secrets",
        "detect": ["api_key"],
        "action": "block",
        "apply_to": ["response"],
        "models": ["chain"],
    },
    {"name": "answer-pii", "detect": ["email"], "action": "redact", "apply_to": ["response"]},
]
TRANSCRIPTIONS = media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS
TRANSLATIONS = media_pb2.MEDIA_OPERATION_AUDIO_TRANSLATIONS


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(base_config(fake.base_url, guardrails=RULES))


def _with_tool(model: str = "chain", **function: Any) -> pb.ChatRequest:
    request = chat(model=model)
    tool = chat_pb2.Tool(type="function", function=chat_pb2.FunctionDefinition(**function))
    request.params.tools.append(tool)
    return request


def _schema(description: str) -> str:
    city = {"type": "string", "description": description, "enum": ["Paris", f"c/o {EMAIL}"]}
    return orjson.dumps({"type": "object", "properties": {"city": city}}).decode()


async def _refused(call: Any) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert AWS_KEY not in str(caught.value) and EMAIL not in str(caught.value)
    return details_from_rpc_error(caught.value)


async def test_a_tool_definition_reaches_the_upstream_redacted(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    request = _with_tool(
        name="weather", description=f"mail {EMAIL}", parameters_json=_schema(EMAIL)
    )
    answer = await router.stub.Chat(request)
    assert list(answer.route.guardrails) == ["pii"]
    [call] = fake.state.calls()
    function = call.body["tools"][0]["function"]
    assert function["description"] == "mail [REDACTED:email]"
    city = function["parameters"]["properties"]["city"]
    assert city == {
        "type": "string",
        "description": "[REDACTED:email]",
        "enum": ["Paris", "c/o [REDACTED:email]"],
    }
    # `pii` names the model `chain` only: calling the deployment itself, nothing is walked.
    fake.state.reset()
    direct = _with_tool(model="alpha/model-a", name="f", description=f"mail {EMAIL}")
    direct.params.extra_json = orjson.dumps({"note": EMAIL}).decode()
    assert list((await router.stub.Chat(direct)).route.guardrails) == []
    [call] = fake.state.calls()
    assert call.body["tools"][0]["function"]["description"] == f"mail {EMAIL}"
    assert call.body["note"] == EMAIL


async def test_a_credential_in_a_tool_schema_is_refused_by_its_path(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    details = await _refused(
        router.stub.Chat(_with_tool(name="f", parameters_json=_schema(f"key {AWS_KEY}")))
    )
    assert details.reason == "GUARDRAIL_BLOCKED" and details.guardrail == "no-credentials"
    assert details.openai_param == "tools[0].function.parameters.properties.city.description"
    details = await _refused(router.stub.Chat(_with_tool(name="f", description=AWS_KEY)))
    assert details.openai_param == "tools[0].function.description"
    assert fake.state.calls() == []


async def test_pass_through_fields_are_screened_and_rewritten(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    extra = {"prediction": {"type": "content", "content": f"to {EMAIL}"}, "seed_bits": 2**40}
    answer = await router.stub.Chat(chat(extra_json=orjson.dumps(extra).decode()))
    assert list(answer.route.guardrails) == ["pii"]
    [call] = fake.state.calls()
    assert call.body["prediction"] == {"type": "content", "content": "to [REDACTED:email]"}
    assert call.body["seed_bits"] == 2**40
    request = chat(extra_json=orjson.dumps({"metadata_blob": [{"k": AWS_KEY}]}).decode())
    stream = router.stub.ChatStream(pb.ChatStreamRequest(params=request.params))
    details = await _refused(stream.read())  # refused before its first message
    assert details.openai_param == "metadata_blob[0].k"
    assert len(fake.state.calls()) == 1


def _transcription(
    filename: str,
    response_format: str = "json",
    model: str = "chain",
    operation: media_pb2.MediaOperation.ValueType = TRANSCRIPTIONS,
) -> pb.MediaRequest:
    params = media_pb2.MediaParams(
        operation=operation,
        model=model,
        params_json=orjson.dumps({"response_format": response_format}).decode(),
        file=media_pb2.MediaFile(data=b"RIFF0000", filename=filename, content_type="audio/wav"),
    )
    return pb.MediaRequest(params=params)


@pytest.mark.parametrize("response_format", ["json", "verbose_json", "text", "srt"])
async def test_a_transcript_is_redacted_before_the_caller_sees_it(
    router: RouterHandle, response_format: str
) -> None:
    answer = await router.stub.Media(_transcription(f"{EMAIL}.wav", response_format))
    assert list(answer.route.guardrails) == ["answer-pii"]
    body = answer.result.body
    assert EMAIL.encode() not in body
    text = orjson.loads(body)["text"] if response_format.endswith("json") else body.decode()
    assert text == "[REDACTED:email]: 8 bytes of audio/wav"


async def test_a_translation_is_screened_as_a_transcript(router: RouterHandle) -> None:
    translation = _transcription(f"{EMAIL}.wav", "text", operation=TRANSLATIONS)
    answer = await router.stub.Media(translation)
    assert list(answer.route.guardrails) == ["answer-pii"]
    assert answer.result.body == b"[REDACTED:email]: 8 bytes of audio/wav, in English"
    blocked = _transcription(f"{AWS_KEY}.wav", operation=TRANSLATIONS)
    details = await _refused(router.stub.Media(blocked))
    assert (details.reason, details.guardrail) == ("GUARDRAIL_BLOCKED", "answer-secrets")
    assert AWS_KEY not in details.message


async def test_a_blocked_transcript_is_refused_and_audited_never_its_text(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with TelemetryCapture() as captured:
        router = await start_router(base_config(fake.base_url, guardrails=RULES))
        details = await _refused(router.stub.Media(_transcription(f"{AWS_KEY}.wav")))
        # The rule names the model `chain` only: the deployment's answer is relayed as it came.
        direct = await router.stub.Media(_transcription(f"{AWS_KEY}.wav", model="alpha/model-a"))
        points = {
            (labels["rule"], labels["side"]): point.value
            for labels, point in captured.points("switchboard.guardrail.matches")
        }
        spans = captured.spans()
    assert (details.reason, details.guardrail) == ("GUARDRAIL_BLOCKED", "answer-secrets")
    assert details.openai_code == "content_policy_violation"
    assert details.openai_param is None
    assert details.message == (
        "The answer was withheld by the guardrail 'answer-secrets' (detector: api_key) in `text`."
    )
    assert orjson.loads(direct.result.body)["text"] == f"{AWS_KEY}.wav: 8 bytes of audio/wav"
    assert len(fake.state.calls()) == 2  # the upstream answered; the caller got none of it
    assert points == {("answer-secrets", "response"): 1}
    lines = [audited(r) for r in caplog.records if r.name == "switchboard.audit"]
    withheld = [line for line in lines if line["outcome"].startswith("answer_")]
    assert [(line["outcome"], line["reason"]) for line in withheld] == [
        ("answer_withheld", "guardrail:answer-secrets:api_key")
    ]
    for record in caplog.records:
        assert AWS_KEY not in f"{record.getMessage()} {record.__dict__}"
    for span in spans:
        assert AWS_KEY not in str(span.attributes) and AWS_KEY not in str(span.events)


async def test_a_redacted_user_still_names_a_conversation_of_its_own(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    """Two users a rule redacts alike reach the upstream as one `[REDACTED:email]` but stay two
    conversations (their own sticky deployment and bans), named by the `user` as sent."""
    users = (EMAIL, "bob@example.com")
    routes = [(await router.stub.Chat(chat(user=user))).route for user in users]
    assert [call.body["user"] for call in fake.state.calls()] == ["[REDACTED:email]"] * 2
    assert [route.session_id for route in routes] == [session_key("", f"user:{u}") for u in users]


async def test_a_streams_route_event_names_the_rules_that_screen_its_answer(
    router: RouterHandle,
) -> None:
    events = [event async for event in router.stub.ChatStream(chat_stream())]
    route = next(event.route for event in events if event.HasField("route"))
    assert list(route.answer_guardrails) == ["answer-secrets", "answer-pii"]
    assert list(route.guardrails) == []  # nothing acted: known before the answer
    events = [event async for event in router.stub.ChatStream(chat_stream("alpha/model-a"))]
    other = next(event.route for event in events if event.HasField("route"))
    assert list(other.answer_guardrails) == ["answer-pii"]  # `answer-secrets` is chain's only


async def test_openings_redacted_alike_still_name_conversations_of_their_own(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    """Two conversations whose opening differs only by an address a rule redacts (a template's
    "Customer: {email}") reach the upstream alike but stay two conversations, named by their
    opening as sent: each its own sticky deployment, bans and `max_sessions` place."""
    texts = [f"Customer: {email}" for email in (EMAIL, "bob@example.com")]
    routes = [(await router.stub.Chat(chat(text=text))).route for text in texts]
    stream = [event async for event in router.stub.ChatStream(chat_stream(text=texts[1]))]
    routes.append(next(event.route for event in stream if event.HasField("route")))
    sent = [call.body["messages"][0]["content"] for call in fake.state.calls()]
    assert sent == ["Customer: [REDACTED:email]"] * 3
    named = [session_key("", session_id_for("", chat(text=text).params)) for text in texts]
    assert [route.session_id for route in routes] == [*named, named[1]]
