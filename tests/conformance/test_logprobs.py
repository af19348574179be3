"""OpenAI's `logprobs` / `top_logprobs` on a deployment that speaks Gemini's format (the Gemini
API, Vertex AI, Vertex AI express mode), through the real router over gRPC: asked for as
generationConfig's `responseLogprobs` / `logprobs`, and each candidate's `logprobsResult`
(chosenCandidates, topCandidates) given back as the choice's `logprobs.content`, unary and
streamed; the same entries an OpenAI deployment gives for the same answer."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.providers._gemini_map import request_body
from tests.conformance.helpers import chat, chunks, params, stream, streamed_text
from tests.conformance.profiles import BY_KIND, KEYS, PROFILES, Profile, conformance_config
from tests.conformance.wire_readers import read_gemini, read_openai
from tests.conftest import StartRouter

GEMINI_FORMAT = [profile for profile in PROFILES if profile.read is read_gemini]
OPENAI_FORMAT = [profile for profile in PROFILES if profile.read is read_openai]
ASKED = {"logprobs": True, "top_logprobs": 2}


async def _router(fake: FakeUpstream, start_router: StartRouter, profile: Profile) -> Any:
    """Group `solo` on the profile's deployment, group `plain` on an OpenAI one (same model)."""
    config = conformance_config(fake, profile)
    config["models"]["plain"] = {"deployments": [{"provider": "backup", "model": "m-up"}]}
    return await start_router(config)


async def _callers_400(router: Any, group: str, streamed: bool) -> Any:
    """The details of the caller's 400 (gRPC INVALID_ARGUMENT) for logprobs asked of `group`."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        p = params(group, "one two", **ASKED)
        await (stream(router, p) if streamed else chat(router, p))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return details_from_rpc_error(caught.value)


async def _refused_to_the_caller(router: Any, streamed: bool, said: str) -> None:
    """Group `solo`'s one deployment refused the logprobs asked: the caller's 400
    (UNSUPPORTED_INPUT) names `logprobs` and quotes the upstream."""
    details = await _callers_400(router, "solo", streamed)
    assert details.reason == "UNSUPPORTED_INPUT"
    assert "logprobs" in details.message and said in details.message


@pytest.mark.parametrize("profile", GEMINI_FORMAT, ids=str)
async def test_logprobs_asked_of_gemini_are_its_logprobs_result(
    fake: FakeUpstream, start_router: StartRouter, profile: Profile
) -> None:
    router = await _router(fake, start_router, profile)
    answer = (await chat(router, params("solo", "one two", **ASKED))).completion.choices[0]
    config = (fake.state.last(model="m-up") or pytest.fail("no call")).body["generationConfig"]
    assert (config["responseLogprobs"], config["logprobs"]) == (True, 2)
    entries = orjson.loads(answer.logprobs_json)["content"]
    assert "".join(e["token"] for e in entries) == answer.message.text == "Echo: one two"
    assert all(len(e["top_logprobs"]) == 2 for e in entries)
    openai = (await chat(router, params("plain", "one two", **ASKED))).completion.choices[0]
    assert entries == orjson.loads(openai.logprobs_json)["content"]
    # Not asked: none asked of Gemini, none given.
    plain = (await chat(router, params("solo", "one two"))).completion.choices[0]
    assert not plain.logprobs_json
    config = (fake.state.last(model="m-up") or pytest.fail("no call")).body.get("generationConfig")
    assert "responseLogprobs" not in (config or {})


@pytest.mark.parametrize("profile", GEMINI_FORMAT, ids=str)
async def test_streamed_logprobs_of_gemini_come_with_their_text(
    fake: FakeUpstream, start_router: StartRouter, profile: Profile
) -> None:
    router = await _router(fake, start_router, profile)

    async def streamed(group: str) -> tuple[str, list[Any]]:
        events = await stream(router, params(group, "one two three", **ASKED))
        pieces = [c.choices[0] for c in chunks(events) if c.choices]
        entries = [orjson.loads(p.logprobs_json)["content"] for p in pieces if p.logprobs_json]
        for piece in pieces:  # each delta's text has its own tokens' logprobs
            tokens = orjson.loads(piece.logprobs_json or "{}").get("content") or []
            assert "".join(e["token"] for e in tokens) == piece.delta.text
        return streamed_text(events), [e for each in entries for e in each]

    text, entries = await streamed("solo")
    assert text == "Echo: one two three" and len(entries) > 1
    assert (text, entries) == await streamed("plain")


@pytest.mark.parametrize("profile", GEMINI_FORMAT, ids=str)
async def test_streamed_logprobs_of_several_candidates_are_each_choices_own(
    fake: FakeUpstream, start_router: StartRouter, profile: Profile
) -> None:
    """Gemini's streamed events carry every candidate asked for (`candidateCount`), each with
    its own `logprobsResult`, and the last event's none: each choice gets its candidate's
    tokens with its own text, as an OpenAI deployment's `n` choices do, and no empty logprobs."""
    router = await _router(fake, start_router, profile)

    async def streamed(group: str) -> dict[int, tuple[str, list[Any]]]:
        events = await stream(router, params(group, "one two three", n=2, **ASKED))
        out: dict[int, tuple[str, list[Any]]] = {}
        for choice in (c for chunk in chunks(events) for c in chunk.choices):
            tokens = orjson.loads(choice.logprobs_json or "{}").get("content")
            assert tokens != []  # a piece without tokens has no logprobs, not an empty list
            assert "".join(e["token"] for e in tokens or []) == choice.delta.text
            text, entries = out.get(choice.index, ("", []))
            out[choice.index] = (text + choice.delta.text, entries + (tokens or []))
        return out

    choices = await streamed("solo")
    config = (fake.state.last(model="m-up") or pytest.fail("no call")).body["generationConfig"]
    assert config["candidateCount"] == 2
    assert sorted(choices) == [0, 1]
    assert all(text == "Echo: one two three" and len(e) > 1 for text, e in choices.values())
    assert choices == await streamed("plain")


@pytest.mark.parametrize("profile", GEMINI_FORMAT, ids=str)
async def test_a_model_that_refuses_logprobs_passes_the_call_on(
    fake: FakeUpstream, start_router: StartRouter, profile: Profile
) -> None:
    """Gemini's 400 for logprobs a model does not give is UNSUPPORTED_INPUT: the group's next
    deployment answers, and with none left the caller's 400 names `logprobs`."""
    router = await _router(fake, start_router, profile)
    refusal = "Logprobs is not enabled for models/m-up"
    error = {"error": {"code": 400, "message": refusal, "status": "INVALID_ARGUMENT"}}
    fake.state.set_scenario(Scenario(status=400, error_body=error), model="m-up")

    answer = await chat(router, params("chain", "one two", **ASKED))
    assert [a.outcome for a in answer.route.attempts] == [
        routing_pb2.OUTCOME_UNSUPPORTED_INPUT,
        routing_pb2.OUTCOME_OK,
    ]
    assert orjson.loads(answer.completion.choices[0].logprobs_json)["content"]
    for streamed in (False, True):
        await _refused_to_the_caller(router, streamed, refusal)
    # Asked for none, the model's other refusals stay what they are.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("solo", "one two"))
    assert details_from_rpc_error(caught.value).reason != "UNSUPPORTED_INPUT"
    # Nor was the deployment cooled by them: another conversation asking for none (this one
    # sticks to the deployment that answered it) is answered by it first.
    fake.state.remove_scenario(model="m-up")
    plain = await chat(router, params("chain", "another question"))
    assert [a.outcome for a in plain.route.attempts] == [routing_pb2.OUTCOME_OK]
    assert plain.route.attempts[0].deployment.endswith("/m-up")


# How OpenAI-format servers refuse logprobs a model does not give: OpenAI's and Azure's
# reasoning models (an error object naming the parameter), vLLM's (an error at the root).
OPENAI_REFUSALS: dict[str, dict[str, Any]] = {
    "openai": {
        "error": {
            "message": "Unsupported parameter: 'logprobs' is not supported with this model.",
            "type": "invalid_request_error",
            "param": "logprobs",
            "code": "unsupported_parameter",
        }
    },
    "vllm": {
        "object": "error",
        "message": "Logprobs are not supported by this model's runner.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    },
    # A LiteLLM proxy's: `param` the string "None" (no field named), the refused parameters
    # quoted as a list or, from older releases, as a dict (`{'logprobs': True}`).
    "litellm": {
        "error": {
            "message": "litellm.UnsupportedParamsError: openai does not support parameters: "
            "['logprobs', 'top_logprobs'], for model=gpt-5-mini. To drop these, set "
            "`litellm.drop_params=True` or for proxy:\n\n`litellm_settings:\n drop_params: true`",
            "type": "None",
            "param": "None",
            "code": "400",
        }
    },
    "litellm_dict": {
        "error": {
            "message": "litellm.UnsupportedParamsError: azure does not support parameters: "
            "{'logprobs': True}, for model=gpt-35-turbo. To drop these, set "
            "`litellm.drop_params=True` or for proxy:\n\n`litellm_settings:\n drop_params: true`",
            "type": "None",
            "param": "None",
            "code": "400",
        }
    },
}


@pytest.mark.parametrize("refusal", sorted(OPENAI_REFUSALS))
@pytest.mark.parametrize("profile", OPENAI_FORMAT, ids=str)
async def test_an_openai_format_model_that_refuses_logprobs_passes_the_call_on(
    fake: FakeUpstream, start_router: StartRouter, profile: Profile, refusal: str
) -> None:
    """An OpenAI-format server's 400 naming logprobs is UNSUPPORTED_INPUT, as Gemini's is: the
    group's next deployment answers, and with none left the caller's 400 names `logprobs`."""
    router = await _router(fake, start_router, profile)
    error = OPENAI_REFUSALS[refusal]
    said = str((error.get("error") or error)["message"])
    fake.state.set_scenario(Scenario(status=400, error_body=error), model="m-up")

    for streamed in (False, True):
        p = params("chain", "one two", **ASKED)
        if streamed:
            events = await stream(router, p)
            assert streamed_text(events) == "Echo: one two"
        else:
            answer = await chat(router, p)
            assert [a.outcome for a in answer.route.attempts] == [
                routing_pb2.OUTCOME_UNSUPPORTED_INPUT,
                routing_pb2.OUTCOME_OK,
            ]
            assert orjson.loads(answer.completion.choices[0].logprobs_json)["content"]
        await _refused_to_the_caller(router, streamed, said)
    # Asked for none, the model's other 400s stay the caller's own.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("solo", "one two"))
    assert details_from_rpc_error(caught.value).reason != "UNSUPPORTED_INPUT"


@pytest.mark.parametrize("profile", OPENAI_FORMAT, ids=str)
async def test_a_422_naming_logprobs_is_a_refusal_as_a_400_is(
    fake: FakeUpstream, start_router: StartRouter, profile: Profile
) -> None:
    """Servers that answer a request they cannot serve with 422 (FastAPI-built ones, TGI) refuse
    logprobs with it too: the group's next deployment answers, as after a 400, and with none
    left the caller's 400 names `logprobs` (it was the upstream's BAD_REQUEST, at once)."""
    router = await _router(fake, start_router, profile)
    said = "Logprobs are not supported by this model."
    error = {"object": "error", "message": said, "type": "BadRequestError", "code": 422}
    fake.state.set_scenario(Scenario(status=422, error_body=error), model="m-up")
    answer = await chat(router, params("chain", "one two", **ASKED))
    assert [a.outcome for a in answer.route.attempts] == [
        routing_pb2.OUTCOME_UNSUPPORTED_INPUT,
        routing_pb2.OUTCOME_OK,
    ]
    for streamed in (False, True):
        await _refused_to_the_caller(router, streamed, said)


@pytest.mark.parametrize(("top", "asked"), [(0, None), (3, 3)])
def test_no_alternatives_asked_is_no_logprobs_count(top: int, asked: int | None) -> None:
    """`top_logprobs: 0` (the chosen tokens alone) sends no `logprobs` count: Vertex AI takes
    1 to 20."""
    body = {"messages": [{"role": "user", "content": "x"}], "logprobs": True, "top_logprobs": top}
    config = request_body(body)["generationConfig"]
    assert (config["responseLogprobs"], config.get("logprobs")) == (True, asked)


# 400s about something else that mention logprobs: a validation error quoting the request
# (pydantic's, as vLLM and other FastAPI servers answer), OpenAI's naming another field (a
# function of the caller's own named after logprobs).
OTHER_400S: dict[str, dict[str, Any]] = {
    "echoed": {
        "object": "error",
        "message": "1 validation error for ChatCompletionRequest\n  Value error, When using "
        "`tool_choice`, `tools` must be set. [type=value_error, input_value={'model': 'm-up', "
        "'messages': [{'role': 'user', 'content': 'one two'}], 'logprobs': True, "
        "'top_logprobs': 2, 'tool_choice': 'auto'}, input_type=dict]",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    },
    "other_param": {
        "error": {
            "message": "Invalid schema for function 'token_logprobs': In context=(), 'required' "
            "is required to be supplied and to be an array including every key in properties.",
            "type": "invalid_request_error",
            "param": "tools[0].function.parameters",
            "code": "invalid_function_parameters",
        }
    },
    # FastAPI's own validation error (its 422, answered by the servers built on it): no
    # `error`, no `message`, the whole body read as the message, the request quoted as JSON.
    "fastapi_detail": {
        "detail": [
            {
                "type": "missing",
                "loc": ["body", "max_tokens"],
                "msg": "Field required",
                "input": {
                    "model": "m-up",
                    "messages": [{"role": "user", "content": "one two"}],
                    "logprobs": True,
                    "top_logprobs": 2,
                },
            }
        ]
    },
}


@pytest.mark.parametrize("status", [400, 422])
@pytest.mark.parametrize("other", sorted(OTHER_400S))
@pytest.mark.parametrize("profile", OPENAI_FORMAT, ids=str)
async def test_a_400_about_something_else_is_not_a_logprobs_refusal(
    fake: FakeUpstream, start_router: StartRouter, profile: Profile, other: str, status: int
) -> None:
    """Logprobs asked, a 400 (or a 422, refused as a 400 is) that mentions them but refuses
    something else (it quotes the request, or names another field) stays the upstream's
    verdict on the request: the caller's 400, in the upstream's words, at once; not the
    group's next deployment asked the same, nor a 400 naming `logprobs` that dropping them
    would not cure."""
    router = await _router(fake, start_router, profile)
    error = OTHER_400S[other]
    fake.state.set_scenario(Scenario(status=status, error_body=error), model="m-up")
    for streamed in (False, True):
        details = await _callers_400(router, "chain", streamed)
        assert details.reason == "BAD_REQUEST" and "gives none" not in details.message
    assert fake.state.count(model="m-backup") == 0


async def test_a_stream_refusing_stream_options_then_logprobs_passes_the_call_on(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A server older than `stream_options` whose model gives no logprobs: the stream asked
    again without them is refused for the logprobs, and that refusal passes the call on."""
    router = await _router(fake, start_router, BY_KIND["openai"])
    error = OPENAI_REFUSALS["vllm"]
    fake.state.set_scenario(Scenario(status=400, error_body=error), model="m-up")
    for key in KEYS:  # the first call's key refuses stream_options, once; then the logprobs
        old = Scenario(refuses_stream_options=True, times=1)
        fake.state.set_scenario(old, key=key, model="m-up")
    events = await stream(router, params("chain", "one two", **ASKED))
    assert streamed_text(events) == "Echo: one two"
    asked = [call.body for call in fake.state.calls(model="m-up")]
    assert ["stream_options" in body for body in asked] == [True, False]
    assert fake.state.count(model="m-backup") == 1
