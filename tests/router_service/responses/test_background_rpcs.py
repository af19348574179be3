"""StartBackgroundResponse / CancelResponse on a real router: a background response is its
client's (another's id is NOT_FOUND), counted in rpm like the Chat call it makes, refused
typed when malformed, and cancelling what cannot be is FAILED_PRECONDITION."""

from __future__ import annotations

import grpc
import orjson
import pytest

from clients import MAX_SESSION_ID_BYTES, details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.engine._tokens import estimate_chat_tokens
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config

A, B, C = "sk-client-a", "sk-client-b", "sk-client-c"


def start_request(response_id: str, text: str = "hello") -> pb.StartBackgroundResponseRequest:
    queued = {"id": response_id, "object": "response", "created_at": 1, "output": []}
    return pb.StartBackgroundResponseRequest(
        chat=chat(text=text),
        response_json=orjson.dumps(queued).decode(),
        input_items_json=[orjson.dumps({"id": "msg_in1", "type": "message"}).decode()],
    )


async def start(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    config = guarded_config(fake.base_url, client("a", A, rpm=2), client("b", B))
    return await start_router(config, clock=ManualClock())


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call  # type: ignore[misc]
    return failed.value


async def loaded(router: RouterHandle, key: str, response_id: str) -> pb.StoredResponse:
    request = pb.LoadResponsesRequest(ids=[response_id])
    answer: pb.LoadResponsesResponse = await router.stub.LoadResponses(
        request, metadata=bearer(key)
    )
    return answer.responses[0]


async def test_a_started_response_is_queued_then_completed_for_its_client_only(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router)
    answer = await router.stub.StartBackgroundResponse(start_request("resp_a1"), metadata=bearer(A))
    queued = orjson.loads(answer.response_json)
    assert (queued["status"], queued["background"], queued["store"]) == ("queued", True, True)
    assert await router.server.jobs.settle(5) == 0
    done = await loaded(router, A, "resp_a1")
    assert done.background_status == "completed"
    assert orjson.loads(done.response_json)["output"][0]["content"][0]["text"] == "Echo: hello"
    assert [m.text for m in done.messages] == ["hello", "Echo: hello"]  # to continue from
    load = pb.LoadResponsesRequest(ids=["resp_a1"])
    error = await failure(router.stub.LoadResponses(load, metadata=bearer(B)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    cancel = pb.CancelResponseRequest(id="resp_a1")
    error = await failure(router.stub.CancelResponse(cancel, metadata=bearer(B)))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_a_start_counts_against_rpm_like_a_chat_call(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router)
    await router.stub.StartBackgroundResponse(start_request("resp_r1"), metadata=bearer(A))
    await router.stub.Chat(chat(), metadata=bearer(A))
    error = await failure(
        router.stub.StartBackgroundResponse(start_request("resp_r2"), metadata=bearer(A))
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(error).reason == "RATE_LIMITED"


async def test_cancelling_what_cannot_be_cancelled_is_failed_precondition(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router)
    await router.stub.StartBackgroundResponse(start_request("resp_c1"), metadata=bearer(B))
    assert await router.server.jobs.settle(5) == 0
    cancel = pb.CancelResponseRequest(id="resp_c1")
    error = await failure(router.stub.CancelResponse(cancel, metadata=bearer(B)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = details_from_rpc_error(error)
    assert (details.reason, details.message) == (
        "RESPONSE_NOT_CANCELLABLE",
        "Cannot cancel a completed response.",
    )
    foreground = pb.StoredResponse(id="resp_f1", response_json='{"id": "resp_f1"}')
    await router.stub.StoreResponse(
        pb.StoreResponseRequest(response=foreground), metadata=bearer(B)
    )
    error = await failure(
        router.stub.CancelResponse(pb.CancelResponseRequest(id="resp_f1"), metadata=bearer(B))
    )
    assert details_from_rpc_error(error).reason == "RESPONSE_NOT_CANCELLABLE"


async def test_a_cancel_answers_cancelled_and_frees_the_key(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router)
    fake.state.set_scenario(Scenario(latency_ms=60_000))
    await router.stub.StartBackgroundResponse(start_request("resp_k1"), metadata=bearer(B))
    await fake.state.wait_for(lambda: fake.state.in_flight == 1, what="the held call")
    cancel = pb.CancelResponseRequest(id="resp_k1")
    answer = await router.stub.CancelResponse(cancel, metadata=bearer(B))
    assert orjson.loads(answer.response_json)["status"] == "cancelled"
    assert fake.state.in_flight == 0 and await router.leases_held() == 0
    assert (await loaded(router, B, "resp_k1")).background_status == "cancelled"


MALFORMED = ["", "[]", '{"no": "id"}', "{not json", '{"id": ""}', '{"id": "%s"}' % ("r" * 129)]


@pytest.mark.parametrize("response_json", MALFORMED)
async def test_a_malformed_start_is_invalid_argument_and_starts_nothing(
    fake: FakeUpstream, start_router: StartRouter, response_json: str
) -> None:
    router = await start(fake, start_router)
    request = start_request("resp_x")
    request.response_json = response_json
    error = await failure(router.stub.StartBackgroundResponse(request, metadata=bearer(B)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error).openai_param == "response_json"
    assert router.server.jobs.running == 0 and fake.state.count() == 0


async def test_a_too_long_session_id_is_invalid_argument_and_starts_nothing(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Checked by the job only, once started: the caller was told `queued`, the job's task died
    with a traceback and its response stayed `in_progress` for good."""
    router = await start(fake, start_router)
    request = start_request("resp_s1")
    request.chat.routing.session_id = "s" * (MAX_SESSION_ID_BYTES + 1)

    error = await failure(router.stub.StartBackgroundResponse(request, metadata=bearer(B)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error).openai_param == "chat.routing.session_id"
    assert router.server.jobs.running == 0 and fake.state.count() == 0
    load = pb.LoadResponsesRequest(ids=["resp_s1"])
    error = await failure(router.stub.LoadResponses(load, metadata=bearer(B)))
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("conversation_start", [-1, 2])
async def test_a_conversation_start_out_of_the_messages_is_invalid_argument(
    fake: FakeUpstream, start_router: StartRouter, conversation_start: int
) -> None:
    """Sliced as asked, -1 kept only the last message as the conversation to continue, and one
    past the end kept none: a continuation of the response lost its conversation."""
    router = await start(fake, start_router)
    request = start_request("resp_c1")
    request.conversation_start = conversation_start

    error = await failure(router.stub.StartBackgroundResponse(request, metadata=bearer(B)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error).openai_param == "conversation_start"
    assert router.server.jobs.running == 0 and fake.state.count() == 0


@pytest.mark.parametrize(
    ("item_json", "param"),
    [
        ("{not json", "conversation_items_json[1]"),
        ("[1]", "conversation_items_json[1]"),
        ('"msg"', "conversation_items_json[1]"),
        ('{"id": 5}', "conversation_items_json[1].id"),
        ('{"id": "msg_1"}', "conversation_items_json[1].id"),  # twice
    ],
)
async def test_a_conversation_item_that_cannot_be_added_is_refused_before_any_call(
    fake: FakeUpstream, start_router: StartRouter, item_json: str, param: str
) -> None:
    """Checked only as the answer was added to the conversation: the upstream was called (its
    tokens spent) for a response that then ended `failed`."""
    router = await start(fake, start_router)
    made = await router.stub.CreateConversation(pb.CreateConversationRequest(), metadata=bearer(B))
    request = start_request("resp_i1")
    request.conversation_id = made.conversation.id
    request.conversation_items_json.extend(['{"id": "msg_1", "type": "message"}', item_json])

    error = await failure(router.stub.StartBackgroundResponse(request, metadata=bearer(B)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error).openai_param == param
    assert router.server.jobs.running == 0 and fake.state.count() == 0
    load = pb.LoadConversationRequest(id=made.conversation.id)
    assert not (await router.stub.LoadConversation(load, metadata=bearer(B))).items


async def test_conversation_items_without_their_conversation_are_invalid_argument(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Before, the job ran and added the items nowhere, silently."""
    router = await start(fake, start_router)
    request = start_request("resp_i2")
    request.conversation_items_json.append('{"id": "msg_1", "type": "message"}')

    error = await failure(router.stub.StartBackgroundResponse(request, metadata=bearer(B)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error).openai_param == "conversation_items_json"
    assert "conversation_id" in details_from_rpc_error(error).message
    assert router.server.jobs.running == 0 and fake.state.count() == 0


async def test_an_id_its_client_holds_is_already_exists(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router)
    await router.stub.StartBackgroundResponse(start_request("resp_d1"), metadata=bearer(B))
    error = await failure(
        router.stub.StartBackgroundResponse(start_request("resp_d1"), metadata=bearer(B))
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert await router.server.jobs.settle(5) == 0
    assert fake.state.count() == 1


async def test_a_job_started_before_a_config_reload_finishes_after_it(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router)
    fake.state.hold()  # the job's call stays upstream across the reload (a latency could run
    # out on a loaded machine before the reload is done, and the check with it)
    await router.stub.StartBackgroundResponse(start_request("resp_l1"), metadata=bearer(B))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the running call")
    config = guarded_config(fake.base_url, client("a", A), client("b", B))
    await router.server.reload(SwitchboardConfig.model_validate(config))
    assert fake.state.in_flight == 1  # the reload left it running
    fake.state.release()
    assert await router.server.jobs.settle(5) == 0
    assert (await loaded(router, B, "resp_l1")).background_status == "completed"


async def test_a_finished_job_settles_its_clients_tokens_to_what_it_used(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # The start counted the call's estimate (as a Chat call's admission does); the job's
    # answer replaces it with the usage, as a Chat call's answer does: tpm and budgets agree.
    tpm = 10_000
    config = guarded_config(fake.base_url, client("c", C, tpm=tpm))
    router = await start_router(config, clock=ManualClock())
    started = start_request("resp_t1", text="one two three")
    await router.stub.StartBackgroundResponse(started, metadata=bearer(C))
    assert await router.server.jobs.settle(5) == 0
    done = orjson.loads((await loaded(router, C, "resp_t1")).response_json)
    used = done["usage"]["total_tokens"]
    assert 0 < used < estimate_chat_tokens(started.chat.params)  # a settlement shows

    answer = await router.stub.Chat(chat(), metadata=bearer(C))
    standing = answer.route.rate_limit
    assert standing.remaining_tokens == tpm - used - estimate_chat_tokens(chat().params)


async def test_a_conversation_it_cannot_find_is_not_found_before_any_call(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Found missing only as the answer was added to it: the upstream was called (its tokens
    spent) for a response that then ended `failed`."""
    router = await start(fake, start_router)
    made = await router.stub.CreateConversation(pb.CreateConversationRequest(), metadata=bearer(A))
    gone = await router.stub.CreateConversation(pb.CreateConversationRequest(), metadata=bearer(B))
    delete = pb.DeleteConversationRequest(id=gone.conversation.id)
    await router.stub.DeleteConversation(delete, metadata=bearer(B))
    unknown, oversized = "conv_missing", "conv_" + "x" * 200
    for i, named in enumerate((unknown, made.conversation.id, gone.conversation.id, oversized)):
        request = start_request(f"resp_n{i}")
        request.conversation_id = named  # A's conversation is not B's to continue

        error = await failure(router.stub.StartBackgroundResponse(request, metadata=bearer(B)))

        assert error.code() == grpc.StatusCode.NOT_FOUND
        details = details_from_rpc_error(error)
        assert (details.reason, details.openai_param) == (
            "CONVERSATION_NOT_FOUND",
            "conversation_id",
        )
        assert details.openai_code == "conversation_not_found"
        load = pb.LoadResponsesRequest(ids=[f"resp_n{i}"])
        error = await failure(router.stub.LoadResponses(load, metadata=bearer(B)))
        assert error.code() == grpc.StatusCode.NOT_FOUND  # nothing queued
    assert router.server.jobs.running == 0 and fake.state.count() == 0


async def test_a_conversation_it_finds_is_continued(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router)
    made = await router.stub.CreateConversation(pb.CreateConversationRequest(), metadata=bearer(B))
    request = start_request("resp_k2")
    request.conversation_id = made.conversation.id
    await router.stub.StartBackgroundResponse(request, metadata=bearer(B))
    assert await router.server.jobs.settle(5) == 0
    load = pb.LoadConversationRequest(id=made.conversation.id)
    assert (await router.stub.LoadConversation(load, metadata=bearer(B))).items
