"""SyncRouterClient against a real (threaded) grpc server on port 0 (`sync_fake_router`)."""

from __future__ import annotations

import sys
import threading
from concurrent import futures

import grpc
import pytest

from clients import (
    RouterError,
    SyncRouterClient,
    details_from_rpc_error,
)
from clients.switchboard.v1 import (
    admin_service_pb2,
    chat_pb2,
    router_service_pb2,
    router_service_pb2_grpc,
)
from tests.clients.sync_fake_router import RATE_LIMITED, WAIT, SyncFakeRouter, router, serving

__all__ = ["router"]  # the fixture


def chat_request(model: str = "m") -> router_service_pb2.ChatRequest:
    return router_service_pb2.ChatRequest(params=chat_pb2.ChatParams(model=model))


def stream_request(model: str = "m") -> router_service_pb2.ChatStreamRequest:
    return router_service_pb2.ChatStreamRequest(params=chat_pb2.ChatParams(model=model))


def test_unary_calls_and_metadata(router: tuple[SyncFakeRouter, str]) -> None:
    fake, target = router
    with SyncRouterClient(target, api_key="sk-1") as client:
        assert client.chat(chat_request("x"), metadata=[("x-trace", "t")]).completion.model == "x"
        assert client.embed(router_service_pb2.EmbedRequest()) == router_service_pb2.EmbedResponse()
        assert client.list_models().models[0].id == "m"
        assert len(client.list_keys().keys) == 1
        req = admin_service_pb2.SetKeyEnabledRequest(fingerprint="fp", enabled=True)
        assert client.set_key_enabled(req).key.fingerprint == "fp"
        pick = router_service_pb2.PickRouteRequest(model="gpt")
        assert client.pick_route(pick).deployment == "gpt"
        assert client.report_outcome(router_service_pb2.ReportOutcomeRequest()).accepted
        stored = router_service_pb2.StoredResponse(id="resp_1")
        req_store = router_service_pb2.StoreResponseRequest(response=stored)
        assert client.store_response(req_store).stored
        req_load = router_service_pb2.LoadResponsesRequest(ids=["resp_1", "resp_2"])
        assert [r.id for r in client.load_responses(req_load).responses] == ["resp_1", "resp_2"]
        req_delete = router_service_pb2.DeleteResponseRequest(id="resp_1")
        assert client.delete_response(req_delete).deleted
        conversations = router_service_pb2
        made = client.create_conversation(conversations.CreateConversationRequest())
        load = conversations.LoadConversationRequest(id=made.conversation.id)
        assert client.load_conversation(load).conversation.id == "conv_1"
        update = conversations.UpdateConversationRequest(id="conv_1")
        assert client.update_conversation(update).conversation.id == "conv_1"
        assert client.delete_conversation(conversations.DeleteConversationRequest(id="c")).deleted
        assert client.get_routing_stats() == admin_service_pb2.GetRoutingStatsResponse()
        assert client.get_server_info().replica == fake.name
        assert [c.name for c in client.list_clients().clients] == [fake.name]
        assert client.list_jobs().replica == f"{fake.name}/0"
        assert client.cancel_client_batch("batch_1", "why").client == "why"
        assert client.issue_client_key("app").key == "ttl=0.0"
        assert [k.client for k in client.list_client_keys("app").keys] == ["app"]
        assert client.revoke_client_key("ck_2").key.id == "ck_2"
        client.purge_cache()
    assert fake.purged == [""]
    assert fake.calls == 23
    assert fake.metadata[0]["authorization"] == "Bearer sk-1"
    assert fake.metadata[0]["x-trace"] == "t"


def test_background_response_calls(router: tuple[SyncFakeRouter, str]) -> None:
    fake, target = router
    with SyncRouterClient(target) as client:
        start = router_service_pb2.StartBackgroundResponseRequest(response_json='{"id": "r"}')
        assert client.start_background_response(start).response_json == '{"id": "r"}'
        cancel = router_service_pb2.CancelResponseRequest(id="resp_1")
        assert client.cancel_response(cancel).response_json == '{"id": "resp_1"}'
        resume = router_service_pb2.ResumeResponseRequest(id="resp_1", starting_after=4)
        with client.resume_response(resume) as events:
            assert [e.event_json for e in events] == ['{"id": "resp_1", "after": 4}']
    assert fake.calls == 3


def test_stream(router: tuple[SyncFakeRouter, str]) -> None:
    _, target = router
    with SyncRouterClient(target) as client, client.chat_stream(stream_request()) as stream:
        events = [event.WhichOneof("event") for event in stream]
    assert events == ["chunk", "chunk", "summary"]


def test_closing_a_stream_early_cancels_the_router_handler(
    router: tuple[SyncFakeRouter, str],
) -> None:
    fake, target = router
    with SyncRouterClient(target) as client:
        with client.chat_stream(stream_request("hang")) as stream:
            assert next(stream).chunk.choices[0].delta.text == "Hel"
        assert fake.ended.wait(WAIT)
        assert list(stream) == []


def test_close_from_another_thread_ends_a_blocked_next(router: tuple[SyncFakeRouter, str]) -> None:
    fake, target = router
    with SyncRouterClient(target) as client:
        stream = client.chat_stream(stream_request("hang"))
        received: list[router_service_pb2.ChatStreamResponse] = []
        both_chunks = threading.Event()

        def consume() -> None:  # an exception here fails the test (unraisable thread error)
            for event in stream:
                received.append(event)
                if len(received) == 2:
                    both_chunks.set()

        consumer = threading.Thread(target=consume)
        consumer.start()
        assert both_chunks.wait(WAIT)  # the consumer now blocks in a next() never answered
        stream.close()
        consumer.join(WAIT)
        assert not consumer.is_alive()
        assert len(received) == 2
        assert fake.ended.wait(WAIT)


def test_deadline(router: tuple[SyncFakeRouter, str]) -> None:
    fake, target = router
    with SyncRouterClient(target) as client:
        with pytest.raises(RouterError) as info:
            client.chat(chat_request("hang"), timeout=0.05)
    assert info.value.grpc_code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert fake.ended.wait(WAIT)


def test_error_details_from_a_sync_call(router: tuple[SyncFakeRouter, str]) -> None:
    _, target = router
    with grpc.insecure_channel(target) as channel:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raw:
            stub.Chat(chat_request("limited"))
    assert details_from_rpc_error(raw.value) == RATE_LIMITED
    with SyncRouterClient(target) as client, pytest.raises(RouterError) as info:
        client.chat(chat_request("limited"))
    assert (info.value.details, info.value.http_status) == (RATE_LIMITED, 429)


def test_round_robin() -> None:
    with serving("a") as (_, target_a), serving("b") as (_, target_b):
        with SyncRouterClient([target_a, target_b]) as client:
            answered = set()
            for _ in range(200):
                answered.add(client.chat(chat_request()).completion.id)
                if answered == {"a", "b"}:
                    break
        assert answered == {"a", "b"}


def test_lifetime(router: tuple[SyncFakeRouter, str]) -> None:
    _, target = router
    client = SyncRouterClient(target)
    client.list_models()
    client.close()
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.chat(chat_request())
    with pytest.raises(RuntimeError, match="more than once"), client:
        pass


def test_threads_sharing_a_client_open_it_once(router: tuple[SyncFakeRouter, str]) -> None:
    """Threads whose first calls race to open one client: the first opens it, the others wait.
    Each opened it for itself: one failed "Cannot open a client instance more than once", or made
    a channel of its own that the client's close never closed. A short switch interval makes the
    race the usual case instead of a rare one."""
    _, target = router
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(ROUNDS):
            client = SyncRouterClient(target)
            with futures.ThreadPoolExecutor(THREADS) as pool:
                start = threading.Barrier(THREADS)
                calls = [pool.submit(_first_call, client, start) for _ in range(THREADS)]
                answers = [call.result() for call in calls]
            client.close()
            assert answers == ["m"] * THREADS
    finally:
        sys.setswitchinterval(switch)


ROUNDS, THREADS = 40, 6


def _first_call(client: SyncRouterClient, start: threading.Barrier) -> str:
    start.wait(WAIT)
    return client.list_models(timeout=WAIT).models[0].id
