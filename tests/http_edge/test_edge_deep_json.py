"""JSON nested deep but within what a parser reads (1024 levels), at every entrance: the JSON
writer every body, stored item and upstream request goes through stops at 255 levels, so a
value nested a few hundred deep was read and then failed to be written (a 500, the edge's
connection dropped). Never a 5xx: a 400 in the entrance's shape, or an answer; and the stack
still serves. Through the real stack (fake upstream, router, edge; gRPC callers on its channel).

Bounded: about a hundred requests, seconds on two cores.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clients import chat_params_from_openai, embedding_params_from_openai, media_params_from_openai
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import router_service_pb2_grpc as rpc
from clients.switchboard.v1.media_pb2 import MEDIA_OPERATION_IMAGE_GENERATIONS as IMAGES
from tests.http_edge.live_stack import (
    AUTH,
    CALL_TIMEOUT_S,
    CALLER_KEY,
    LiveStack,
    assert_still_serves,
)
from tests.http_edge.test_edge_hostile_fields import assert_answered_in_kind

# Deep enough to pass the entrance's own per-field check and fail the writer once placed in
# the whole body (about 250), up to what the parser reads.
DEPTHS = st.integers(min_value=240, max_value=900)
CHAT = {"model": "chain", "messages": [{"role": "user", "content": "hi"}]}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def _chat(**fields: Any) -> dict[str, Any]:
    return {**CHAT, **fields}


def _message(deep: Any) -> dict[str, Any]:
    return _chat(messages=[{"role": "user", "content": "hi", "zz": deep}])


def _part(deep: Any) -> dict[str, Any]:
    return _chat(
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "zz": deep}]}]
    )


def _tool(deep: Any, stream: bool = False) -> dict[str, Any]:
    tool = {"type": "function", "function": {"name": "f", "parameters": deep}}
    return _chat(tools=[tool], stream=stream)


def _tool_use(deep: Any) -> dict[str, Any]:
    use = {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": deep}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": "4"}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
    ]
    return {"model": "chain", "max_tokens": 5, "messages": messages}


def _ollama_call(deep: Any) -> dict[str, Any]:
    call = {"function": {"name": "f", "arguments": {"a": deep}}}
    messages = [{"role": "assistant", "content": "", "tool_calls": [call]}, CHAT["messages"][0]]
    return _chat(messages=messages, stream=False)


def _embedding(deep: Any) -> dict[str, Any]:
    return {"model": "embedder", "input": "hi", "zz": deep}


def _item(deep: Any) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": "hi", "zz": deep}


def _conversation(deep: Any) -> dict[str, Any]:
    return {"items": [_item(deep)]}


def _conversation_metadata(deep: Any) -> dict[str, Any]:
    return {"metadata": {"a": deep}}


def _response(deep: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "chain", "input": [_item(deep)], **fields}


def _media(base: dict[str, Any], deep: Any) -> dict[str, Any]:
    return {"model": "chain", **base, "zz": deep}


def _moderation(deep: Any) -> dict[str, Any]:
    return {"model": "chain", "input": [{"type": "text", "text": "hi", "zz": deep}]}


def _response_schema(deep: Any, **fields: Any) -> dict[str, Any]:
    text = {"format": {"type": "json_schema", "name": "s", "schema": deep}}
    return {"model": "chain", "input": "hi", "text": text, **fields}


def _client_secret(deep: Any) -> dict[str, Any]:
    return {"session": {"type": "realtime", "model": "chain", "zz": deep}}


# Each: the path, and the body with the deep value in it.
BODIES: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "chat message": ("/v1/chat/completions", _message),
    "chat part": ("/v1/chat/completions", _part),
    "chat tool": ("/v1/chat/completions", _tool),
    "chat stream tool": ("/v1/chat/completions", partial(_tool, stream=True)),
    "messages tool_use": ("/v1/messages", _tool_use),
    "ollama tool call": ("/api/chat", _ollama_call),
    "embeddings": ("/v1/embeddings", _embedding),
    "responses stored": ("/v1/responses", _response),
    "responses background": ("/v1/responses", partial(_response, background=True)),
    "responses streamed": ("/v1/responses", partial(_response, stream=True)),
    "responses schema": ("/v1/responses", _response_schema),
    "responses streamed schema": ("/v1/responses", partial(_response_schema, stream=True)),
    "conversation items": ("/v1/conversations", _conversation),
    "conversation metadata": ("/v1/conversations", _conversation_metadata),
    "moderations": ("/v1/moderations", _moderation),
    "images": ("/v1/images/generations", partial(_media, {"prompt": "cat"})),
    "speech": ("/v1/audio/speech", partial(_media, {"input": "hi", "voice": "alloy"})),
    "rerank": ("/v1/rerank", partial(_media, {"query": "q", "documents": ["a"]})),
    "client secret": ("/v1/realtime/client_secrets", _client_secret),
}


@given(where=st.sampled_from(sorted(BODIES)), depth=DEPTHS)
@example(where="chat message", depth=252)
@example(where="chat tool", depth=252)
@example(where="responses stored", depth=300)
@example(where="responses background", depth=300)
@example(where="responses streamed schema", depth=251)
@example(where="conversation items", depth=300)
@example(where="conversation metadata", depth=300)
@example(where="moderations", depth=252)
@example(where="images", depth=300)
@example(where="client secret", depth=253)
@example(where="client secret", depth=300)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_json_nested_deep_in_a_body_is_never_a_server_error(
    live_http: httpx.Client, where: str, depth: int
) -> None:
    path, body = BODIES[where]
    content = json.dumps(body(nested(depth))).encode()
    headers = {**AUTH, "content-type": "application/json"}
    assert_answered_in_kind(path, live_http.post(path, content=content, headers=headers))
    assert_still_serves(live_http)


# --- gRPC callers: the `*_json` fields another language's caller writes ---------------------

_PARAMS = {
    **CHAT,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
}
# Each: the RPC, and where in its params the deep JSON text goes.
JSON_FIELDS = [
    ("Chat", ("extra_json",)),
    ("Chat", ("messages", 0, "extra_json")),
    ("Chat", ("messages", 0, "parts", "parts", 0, "extra_json")),
    ("Chat", ("tools", 0, "function", "parameters_json")),
    ("ChatStream", ("extra_json",)),
    ("Embed", ("extra_json",)),
    ("Media", ("params_json",)),
    ("CreateRealtimeClientSecret", ("session_json",)),
]


@pytest.fixture(scope="module")
def router_stub(live_stack: LiveStack) -> Iterator[rpc.RouterServiceStub]:
    with grpc.insecure_channel(live_stack.router_target) as channel:
        yield rpc.RouterServiceStub(channel)


def _call(stub: rpc.RouterServiceStub, method: str, field: tuple[Any, ...], text: str) -> None:
    if method == "CreateRealtimeClientSecret":
        secret = pb.CreateRealtimeClientSecretRequest(session_json=text)
        stub.CreateRealtimeClientSecret(secret, metadata=_KEY, timeout=CALL_TIMEOUT_S)
        return
    if method == "Media":
        media = media_params_from_openai(IMAGES, {"model": "chain", "prompt": "cat"})
        media.params_json = text
        stub.Media(pb.MediaRequest(params=media), metadata=_KEY, timeout=CALL_TIMEOUT_S)
        return
    if method == "Embed":
        embed = embedding_params_from_openai({"model": "embedder", "input": "hi"})
        embed.extra_json = text
        stub.Embed(pb.EmbedRequest(params=embed), metadata=_KEY, timeout=CALL_TIMEOUT_S)
        return
    params, _ = chat_params_from_openai(_PARAMS)
    owner: Any = params
    for step in field[:-1]:
        owner = owner[step] if isinstance(step, int) else getattr(owner, step)
    setattr(owner, field[-1], text)
    if method == "Chat":
        stub.Chat(pb.ChatRequest(params=params), metadata=_KEY, timeout=CALL_TIMEOUT_S)
        return
    request = pb.ChatStreamRequest(params=params)
    for event in stub.ChatStream(request, metadata=_KEY, timeout=CALL_TIMEOUT_S):
        assert not event.HasField("error"), event.error


_KEY = (("authorization", f"Bearer {CALLER_KEY}"),)


@given(where=st.sampled_from(JSON_FIELDS), depth=st.integers(min_value=260, max_value=900))
@example(where=("Chat", ("extra_json",)), depth=300)
@example(where=("Embed", ("extra_json",)), depth=300)
@example(where=("Media", ("params_json",)), depth=300)
@example(where=("CreateRealtimeClientSecret", ("session_json",)), depth=300)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_json_nested_deep_in_a_grpc_field_is_invalid_argument(
    router_stub: rpc.RouterServiceStub, where: tuple[str, tuple[Any, ...]], depth: int
) -> None:
    method, field = where
    deep = {"zz": nested(depth)}
    if method == "CreateRealtimeClientSecret":  # a session asks for a model
        deep = {"model": "chain", **deep}
    text = json.dumps(deep)
    with pytest.raises(grpc.RpcError) as caught:
        _call(router_stub, method, field, text)
    error: Any = caught.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "nests too deep" in error.details()  # in the API's words, in both refusals
    assert "Recursion" not in error.details()  # not the JSON writer's
