"""Requests a gRPC caller can build but no upstream body can be written from: refused with
INVALID_ARGUMENT naming the field, before any routing work, with no traceback in the log."""

from __future__ import annotations

import logging
import math
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor

from clients import details_from_rpc_error
from clients.switchboard.v1 import batches_pb2, chat_pb2, embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle
from tests.router_service.server.test_field_paths import names_a_field_of


def message(**fields: Any) -> chat_pb2.ChatMessage:
    fields.setdefault("role", chat_pb2.ROLE_USER)
    if "parts" not in fields:
        fields.setdefault("text", "hi")
    return chat_pb2.ChatMessage(**fields)


def no_part_kind() -> chat_pb2.ChatMessage:
    return message(parts=chat_pb2.ContentParts(parts=[chat_pb2.ContentPart()]))


def tool(**function: Any) -> chat_pb2.Tool:
    definition = chat_pb2.FunctionDefinition(name="f", **function)
    return chat_pb2.Tool(type="function", function=definition)


def schema_format(schema_json: str) -> chat_pb2.ResponseFormat:
    return chat_pb2.ResponseFormat(
        type=chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
        json_schema=chat_pb2.JsonSchemaFormat(name="s", schema_json=schema_json),
    )


CHAT_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown role": ({"messages": [message(role=99)]}, "messages[0].role"),
    # What protobufjs builds from `role: "user"` (an enum string it does not know is dropped).
    "role unset": ({"messages": [message(role=chat_pb2.ROLE_UNSPECIFIED)]}, "messages[0].role"),
    "content part of no kind": ({"messages": [no_part_kind()]}, "messages[0].content[0]"),
    "extra_json not JSON": ({"extra_json": "{bad"}, "extra_json"),
    "extra_json an array": ({"extra_json": "[1]"}, "extra_json"),
    "message extra_json not JSON": (
        {"messages": [message(extra_json="{")]},
        "messages[0].extra_json",
    ),
    "parameters_json not JSON": (
        {"tools": [tool(parameters_json="{")]},
        "tools[0].function.parameters_json",
    ),
    "tool_choice raw_json not JSON": (
        {"tool_choice": chat_pb2.ToolChoice(raw_json="{")},
        "tool_choice.raw_json",
    ),
    # What protobufjs builds from OpenAI's `{type: "function", function: {name: "f"}}`: keys
    # that are no field of ToolChoice are dropped, leaving it set with no kind (it was dropped
    # too, and the model was not made to call `f`).
    "tool_choice of no kind": ({"tool_choice": chat_pb2.ToolChoice()}, "tool_choice"),
    "unknown tool_choice mode": (
        {"tool_choice": chat_pb2.ToolChoice(mode=99)},  # type: ignore[arg-type]
        "tool_choice.mode",
    ),
    # A choice that forces a call of no tool: OpenAI's 400, not a text answer (it was dropped).
    "tool_choice required without tools": (
        {"tool_choice": chat_pb2.ToolChoice(mode=chat_pb2.TOOL_CHOICE_MODE_REQUIRED)},
        "tool_choice",
    ),
    "tool_choice naming a function without tools": (
        {"tool_choice": chat_pb2.ToolChoice(function_name="f")},
        "tool_choice",
    ),
    "function_call naming a function without functions": (
        {"extra_json": '{"functions": [], "function_call": {"name": "f"}}'},
        "function_call",
    ),
    # OpenAI's 400 ("'functions' and 'tools' cannot both be provided"); dropped at a kind
    # that reads `tools` alone, the model could never call the functions.
    "functions beside tools": (
        {"tools": [tool()], "extra_json": '{"functions": [{"name": "g"}]}'},
        "functions",
    ),
    "response_format type unset": (
        {"response_format": chat_pb2.ResponseFormat()},
        "response_format.type",
    ),
    "unknown response_format type": (
        {"response_format": chat_pb2.ResponseFormat(type=99)},  # type: ignore[arg-type]
        "response_format.type",
    ),
    "schema_json not JSON": (
        {"response_format": schema_format("{")},
        "response_format.json_schema.schema_json",
    ),
    "NaN temperature": ({"temperature": math.nan}, "temperature"),
    "infinite top_p": ({"top_p": math.inf}, "top_p"),
    "infinite presence_penalty": ({"presence_penalty": -math.inf}, "presence_penalty"),
    "NaN frequency_penalty": ({"frequency_penalty": math.nan}, "frequency_penalty"),
    # The router chooses streaming by the RPC: an SSE answer to a plain call would count as
    # the upstream's failure, cooling it for every caller.
    "stream in extra_json": ({"extra_json": '{"stream": true}'}, "extra_json.stream"),
    # A Gemini deployment's carried config, malformed: refused whichever deployment the group
    # would ask first (here an OpenAI-format one, which drops it), not only at a Gemini one's.
    "gemini_only not an object": ({"extra_json": '{"gemini_only": 5}'}, "gemini_only"),
    "gemini_only.safetySettings not a list": (
        {"extra_json": '{"gemini_only": {"safetySettings": "BLOCK_NONE"}}'},
        "gemini_only.safetySettings",
    ),
    "gemini_only.safetySettings without threshold": (
        {"extra_json": '{"gemini_only": {"safetySettings": [{"category": "HARM"}]}}'},
        "gemini_only.safetySettings[0].threshold",
    ),
}


def chat_params(fields: dict[str, Any]) -> chat_pb2.ChatParams:
    fields = dict(fields)
    fields.setdefault("messages", [message()])
    return chat_pb2.ChatParams(model="chain", **fields)


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def assert_invalid_argument(
    error: grpc.aio.AioRpcError, param: str, request: Descriptor | None = None
) -> None:
    """Refused naming `param` (OpenAI's name); its BadRequest violation names a field of
    `request` (test_field_paths.py has the exact paths), or `param` itself, a top-level field
    of the request's when no `request` is given."""
    details = details_from_rpc_error(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert (details.reason, details.openai_type) == ("INVALID_ARGUMENT", "invalid_request_error")
    assert details.openai_param == param
    [field] = [field for field, _ in details.field_violations]
    if request is None:
        assert field == param
    else:
        assert names_a_field_of(request, field), field


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.parametrize("stream", [False, True], ids=["Chat", "ChatStream"])
@pytest.mark.parametrize(("fields", "param"), CHAT_CASES.values(), ids=CHAT_CASES.keys())
async def test_untranslatable_chat_fields_are_the_callers_error(
    router: RouterHandle,
    fake: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    fields: dict[str, Any],
    param: str,
    stream: bool,
) -> None:
    params = chat_params(fields)
    if stream:

        async def drain() -> None:
            async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=params)):
                pass

        error = await refused(drain())
    else:
        error = await refused(router.stub.Chat(pb.ChatRequest(params=params)))

    assert_invalid_argument(error, param, pb.ChatRequest.DESCRIPTOR)
    assert fake.state.count() == 0  # refused at the door: no upstream asked, nobody cooled
    assert await router.leases_held() == 0
    no_errors_logged(caplog)


async def test_untranslatable_embed_fields_are_the_callers_error(
    router: RouterHandle, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    params = embeddings_pb2.EmbeddingParams(model="embedder", text="x", extra_json="{")

    error = await refused(router.stub.Embed(pb.EmbedRequest(params=params)))

    assert_invalid_argument(error, "extra_json", pb.EmbedRequest.DESCRIPTOR)
    assert fake.state.count() == 0
    no_errors_logged(caplog)


EMBED_CASES: dict[str, tuple[dict[str, Any], str]] = {
    # OpenAI's two; a kind that packs its own vectors answered floats for any other word.
    "unknown encoding_format": ({"encoding_format": "hex"}, "encoding_format"),
    "zero dimensions": ({"dimensions": 0}, "dimensions"),
    "negative dimensions": ({"dimensions": -3}, "dimensions"),
}


@pytest.mark.parametrize(("fields", "param"), EMBED_CASES.values(), ids=EMBED_CASES.keys())
async def test_embed_options_openai_refuses_are_refused_at_the_door(
    router: RouterHandle, fake: FakeUpstream, fields: dict[str, Any], param: str
) -> None:
    """The edge refused these (README: a format other than `float` and `base64` is a 400 naming
    `encoding_format`, whatever the group); a gRPC caller's went on to the upstream, whose kind
    decided: a 400 from OpenAI, a 200 of floats from a kind that packs its own vectors."""
    params = embeddings_pb2.EmbeddingParams(model="embedder", text="x", **fields)

    error = await refused(router.stub.Embed(pb.EmbedRequest(params=params)))

    assert_invalid_argument(error, param, pb.EmbedRequest.DESCRIPTOR)
    assert fake.state.count() == 0
    assert await router.leases_held() == 0


@pytest.mark.parametrize(
    "shape",
    [
        {"texts": embeddings_pb2.TextList()},
        {"tokens": embeddings_pb2.TokenList()},
        {"token_lists": embeddings_pb2.TokenLists()},
    ],
    ids=["texts", "tokens", "token lists"],
)
async def test_an_empty_embed_input_is_the_callers_error(
    router: RouterHandle, fake: FakeUpstream, shape: dict[str, Any]
) -> None:
    """OpenAI refuses `input: []`; a kind that cuts the inputs into calls made none and said 200
    with no vector."""
    params = embeddings_pb2.EmbeddingParams(model="embedder", **shape)

    error = await refused(router.stub.Embed(pb.EmbedRequest(params=params)))

    assert_invalid_argument(error, "input", pb.EmbedRequest.DESCRIPTOR)
    assert fake.state.count() == 0
    assert await router.leases_held() == 0


async def test_a_refusal_that_quotes_a_long_value_still_fits_the_trailers(
    router: RouterHandle,
) -> None:
    """The refusal names what was sent (`Invalid purpose '…'`); its BadRequest violation said it
    whole, and past gRPC's 16 KiB a caller got METADATA_TOO_LARGE instead of its error."""
    purpose = "p" * 20_000
    error = await refused(router.stub.UploadFile(batches_pb2.UploadFileRequest(purpose=purpose)))

    assert_invalid_argument(error, "purpose")
    [(_, description)] = details_from_rpc_error(error).field_violations
    assert description.startswith("Invalid purpose 'ppp") and len(description.encode()) <= 1024


async def cached_call(
    router: RouterHandle, method: str, routing: routing_pb2.RoutingOptions
) -> None:
    """One call of a method the response cache may answer, drained."""
    if method == "Chat":
        await router.stub.Chat(pb.ChatRequest(params=chat_params({}), routing=routing))
    elif method == "ChatStream":
        request = pb.ChatStreamRequest(params=chat_params({}), routing=routing)
        async for _ in router.stub.ChatStream(request):
            pass
    else:
        params = embeddings_pb2.EmbeddingParams(model="embedder", text="x")
        await router.stub.Embed(pb.EmbedRequest(params=params, routing=routing))


@pytest.mark.parametrize("method", ["Chat", "ChatStream", "Embed"])
async def test_an_unknown_cache_mode_is_the_callers_error(
    router: RouterHandle, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    """A mode of a newer proto (or a wrong number) was read as unset: a caller that meant to keep
    its answer out of the cache had it kept. Every other enum a caller sends is checked."""
    routing = routing_pb2.RoutingOptions(cache=999)  # type: ignore[arg-type]

    error = await refused(cached_call(router, method, routing))

    assert_invalid_argument(error, "routing.cache")
    assert fake.state.count() == 0
    assert await router.leases_held() == 0
    no_errors_logged(caplog)
