"""BadRequest field violations as a caller built on the published protos reads them: `field` is a
path in the request message it sent (google.rpc.BadRequest's meaning), walked with nothing but
that message's descriptor; ErrorInfo's `openai_param` keeps OpenAI's name for the edge. Raw
generated stubs over a real channel, the status decoded with googleapis' protos alone."""

from __future__ import annotations

import json
import re
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor
from google.rpc import error_details_pb2, status_pb2

from clients import LocalChannel, RouterClient, RouterError
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


def names_a_field_of(request: Descriptor, path: str) -> bool:
    """Whether `path` ("params.messages[1].role") walks `request`'s fields (a oneof's name may
    end it), indices only on lists."""
    message: Descriptor | None = request
    for segment in path.split("."):
        matched = _SEGMENT.fullmatch(segment)
        if matched is None or message is None:
            return False
        name, indices = matched.groups()
        field = message.fields_by_name.get(name)
        if field is None:
            return name in message.oneofs_by_name and not indices
        if indices and not field.is_repeated:
            return False
        message = field.message_type
    return True


def refusal(error: grpc.aio.AioRpcError) -> tuple[dict[str, str], list[str]]:
    """ErrorInfo's metadata and BadRequest's fields, from the trailer alone."""
    raw = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    for detail in status_pb2.Status.FromString(raw).details:
        if detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(bad.DESCRIPTOR):
            detail.Unpack(bad)
    return dict(info.metadata), [violation.field for violation in bad.field_violations]


def chat(**fields: Any) -> chat_pb2.ChatParams:
    fields.setdefault("model", "chain")
    fields.setdefault("messages", [chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")])
    return chat_pb2.ChatParams(**fields)


def image(detail: int) -> chat_pb2.ChatMessage:
    part = chat_pb2.ContentPart(image_url=chat_pb2.ImageUrlPart(url="https://x/y.png"))
    part.image_url.detail = detail  # type: ignore[assignment]  # a value a newer client knows
    return chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, parts=chat_pb2.ContentParts(parts=[part]))


def media(operation: int, **fields: Any) -> media_pb2.MediaParams:
    """A Media call's params: OpenAI's body (but its uploads) in `params_json`."""
    return media_pb2.MediaParams(
        operation=operation,  # type: ignore[arg-type]
        model="chain",
        params_json=json.dumps(fields),
    )


UNSET_ROLE = [chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="a"), chat_pb2.ChatMessage()]
SESSION = json.dumps({"type": "realtime", "model": "chain"})
# (method, request, the BadRequest field, ErrorInfo's openai_param)
CASES: dict[str, tuple[str, Any, str, str]] = {
    "no model": ("Chat", pb.ChatRequest(params=chat(model="")), "params.model", "model"),
    "role unset": (
        "Chat",
        pb.ChatRequest(params=chat(messages=UNSET_ROLE)),
        "params.messages[1].role",
        "messages[1].role",
    ),
    "streamed, role unset": (
        "ChatStream",
        pb.ChatStreamRequest(params=chat(messages=UNSET_ROLE)),
        "params.messages[1].role",
        "messages[1].role",
    ),
    "background, role unset": (
        "StartBackgroundResponse",
        pb.StartBackgroundResponseRequest(
            chat=pb.ChatRequest(params=chat(messages=UNSET_ROLE)),
            response_json=json.dumps({"id": "resp_bg", "object": "response", "background": True}),
        ),
        "chat.params.messages[1].role",
        "messages[1].role",
    ),
    "unknown image detail": (
        "Chat",
        pb.ChatRequest(params=chat(messages=[image(99)])),
        "params.messages[0].parts.parts[0].image_url.detail",
        "messages[0].content[0].image_url.detail",
    ),
    "stream in extra_json": (
        "Chat",
        pb.ChatRequest(params=chat(extra_json='{"stream": true}')),
        "params.extra_json",
        "extra_json.stream",
    ),
    "unknown cache mode": (
        "Chat",
        pb.ChatRequest(params=chat(), routing=routing_pb2.RoutingOptions(cache=99)),  # type: ignore[arg-type]
        "routing.cache",
        "routing.cache",
    ),
    "no embed input": (
        "Embed",
        pb.EmbedRequest(params=embeddings_pb2.EmbeddingParams(model="embedder")),
        "params.input",
        "input",
    ),
    "no media operation": (
        "Media",
        pb.MediaRequest(params=media_pb2.MediaParams(model="chain")),
        "params.operation",
        "operation",
    ),
    "stream asked of Media in params_json": (
        "Media",
        pb.MediaRequest(
            params=media(media_pb2.MEDIA_OPERATION_MODERATIONS, input="x", stream=True)
        ),
        "params.params_json",
        "stream",
    ),
    "rerank without a query": (
        "Media",
        pb.MediaRequest(params=media(media_pb2.MEDIA_OPERATION_RERANK, documents=["a"])),
        "params.params_json",
        "query",
    ),
    "conversation metadata over 16 pairs": (
        "CreateConversation",
        pb.CreateConversationRequest(metadata_json=json.dumps({f"k{i}": "v" for i in range(17)})),
        "metadata_json",
        "metadata",
    ),
    "conversation item not JSON": (
        "CreateConversation",
        pb.CreateConversationRequest(items_json=["{"]),
        "items_json[0]",
        "items[0]",
    ),
    "client secret lifetime out of range": (
        "CreateRealtimeClientSecret",
        pb.CreateRealtimeClientSecretRequest(session_json=SESSION, expires_after_s=5),
        "expires_after_s",
        "expires_after.seconds",
    ),
    "client secret session without model": (
        "CreateRealtimeClientSecret",
        pb.CreateRealtimeClientSecretRequest(session_json="{}"),
        "session_json",
        "session.model",
    ),
    "second response id empty": (
        "LoadResponses",
        pb.LoadResponsesRequest(ids=["resp_a", ""]),
        "ids[1]",
        "ids[1]",
    ),
}


async def called(router: RouterHandle, method: str, request: Any) -> grpc.aio.AioRpcError:
    """One call by its full name, as a stub of any language makes it; its refusal."""
    rpc = getattr(router.stub, method)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        call = rpc(request)
        if isinstance(call, grpc.aio.UnaryStreamCall):  # ChatStream, ResumeResponse…
            async for _ in call:
                pass
        else:
            await call
    return refused.value


@pytest.mark.parametrize(("method", "request_", "field", "param"), CASES.values(), ids=CASES.keys())
async def test_a_violation_names_the_field_of_the_request_sent(
    router: RouterHandle, method: str, request_: Any, field: str, param: str
) -> None:
    error = await called(router, method, request_)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    metadata, fields = refusal(error)
    assert fields == [field]
    assert names_a_field_of(request_.DESCRIPTOR, field)
    assert metadata["openai_param"] == param  # the edge's OpenAI `param`, as it was


def test_the_path_checker_refuses_what_the_proto_does_not_have() -> None:
    request = pb.ChatRequest.DESCRIPTOR
    assert names_a_field_of(request, "params.messages[1].role")
    assert names_a_field_of(request, "params.stop")  # a oneof as a whole
    for path in ("messages[1].role", "params.model[0]", "params.messages[0].content[0]"):
        assert not names_a_field_of(request, path), path


@pytest.mark.parametrize("in_process", [False, True], ids=["wire", "in-process"])
async def test_the_python_client_reads_the_same_paths_over_either_channel(
    router: RouterHandle, in_process: bool
) -> None:
    """`switchboard serve` calls the router in-process (a LocalChannel): its refusals' paths
    are the port's."""
    channel = LocalChannel(router.server.in_process) if in_process else None
    async with RouterClient(router.server.address, channel=channel) as client:
        with pytest.raises(RouterError) as refused:
            await client.chat(pb.ChatRequest(params=chat(messages=UNSET_ROLE)))
    details = refused.value.details
    assert details.openai_param == "messages[1].role"
    assert [field for field, _ in details.field_violations] == ["params.messages[1].role"]


async def test_a_refusal_of_no_field_of_the_request_has_no_violation(router: RouterHandle) -> None:
    """Resuming a response answered in the foreground is refused of OpenAI's `stream` (the
    edge's `param`), a field ResumeResponseRequest does not have: BadRequest names none
    rather than one a caller's descriptor cannot walk."""
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="x")
    stored = pb.StoredResponse(id="resp_foreground", messages=[message])
    assert (await router.stub.StoreResponse(pb.StoreResponseRequest(response=stored))).stored
    request = pb.ResumeResponseRequest(id="resp_foreground")

    error = await called(router, "ResumeResponse", request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    metadata, fields = refusal(error)
    assert metadata["openai_param"] == "stream"
    assert fields == []


@pytest.mark.parametrize("extra", ["", '{"safety_identifier": "u1"}'], ids=["none", "another key"])
async def test_extra_json_is_named_only_for_a_key_given_there(
    fake: FakeUpstream, start_router: StartRouter, extra: str
) -> None:
    """A background response a router keeps no responses for is refused of OpenAI's
    `background`, which no field of StartBackgroundResponseRequest holds: the `extra_json`
    named for a key given there is not named when the key is not in it."""
    router = await start_router(base_config(fake.base_url, responses={"store": False}))
    queued = {"id": "resp_bg", "object": "response", "background": True}
    request = pb.StartBackgroundResponseRequest(
        chat=pb.ChatRequest(params=chat(extra_json=extra)), response_json=json.dumps(queued)
    )

    error = await called(router, "StartBackgroundResponse", request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    metadata, fields = refusal(error)
    assert metadata["openai_param"] == "background"
    assert fields == []
