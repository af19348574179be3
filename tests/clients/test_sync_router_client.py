"""SyncRouterClient against a real (threaded) grpc server on port 0."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import pytest

from clients import (
    ErrorDetails,
    RouterError,
    SyncRouterClient,
    details_from_rpc_error,
    to_grpc_status,
)
from clients.switchboard.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    chat_pb2,
    conversations_pb2,
    router_service_pb2,
    router_service_pb2_grpc,
)
from tests.helpers import FilesUnimplemented

WAIT = 5.0
SERVER_OPTIONS = [
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]
RATE_LIMITED = ErrorDetails(
    code=grpc.StatusCode.RESOURCE_EXHAUSTED,
    message="slow down",
    reason="RATE_LIMITED",
    provider="groq",
    retry_after_s=2.0,
)


class SyncFakeRouter(FilesUnimplemented, admin_service_pb2_grpc.AdminServiceServicer):
    """``model="hang"`` blocks until the call ends; ``model="limited"`` aborts with details."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.purged: list[str] = []
        self.lock = threading.Lock()
        self.calls = 0
        self.metadata: list[dict[str, str | bytes]] = []
        self.ended = threading.Event()

    def _seen(self, context: grpc.ServicerContext) -> None:
        with self.lock:
            self.calls += 1
            self.metadata.append(dict(context.invocation_metadata()))

    def _watch(self, context: grpc.ServicerContext) -> threading.Event:
        """An event set when the call terminates; a ``hang`` call only ends by cancellation.

        Registered before the first ``yield``: a cancellation that lands while the generator is
        suspended closes it without running any more of its code.
        """
        done = threading.Event()

        def on_done() -> None:
            done.set()
            self.ended.set()

        assert context.add_callback(on_done)
        return done

    def Chat(
        self, request: router_service_pb2.ChatRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.ChatResponse:
        self._seen(context)
        if request.params.model == "hang":
            self._watch(context).wait(WAIT * 2)
        if request.params.model == "limited":
            context.abort_with_status(to_grpc_status(RATE_LIMITED))
        completion = chat_pb2.ChatCompletion(id=self.name, model=request.params.model)
        return router_service_pb2.ChatResponse(completion=completion)

    def ChatStream(
        self, request: router_service_pb2.ChatStreamRequest, context: grpc.ServicerContext
    ) -> Iterator[router_service_pb2.ChatStreamResponse]:
        self._seen(context)
        done = self._watch(context) if request.params.model == "hang" else None
        for text in ("Hel", "lo"):
            response = chat_pb2.ChatCompletionChunk(id="c")
            response.choices.add(delta=chat_pb2.ChatMessage(text=text))
            yield router_service_pb2.ChatStreamResponse(chunk=response)
        if done is not None:
            done.wait(WAIT * 2)
            return
        yield router_service_pb2.ChatStreamResponse(summary=router_service_pb2.StreamSummary())

    def Embed(
        self, request: router_service_pb2.EmbedRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.EmbedResponse:
        self._seen(context)
        return router_service_pb2.EmbedResponse()

    def Media(
        self, request: router_service_pb2.MediaRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.MediaResponse:
        self._seen(context)
        return router_service_pb2.MediaResponse()

    def ListModels(
        self, request: router_service_pb2.ListModelsRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.ListModelsResponse:
        self._seen(context)
        return router_service_pb2.ListModelsResponse(models=[router_service_pb2.ModelInfo(id="m")])

    def PickRoute(
        self, request: router_service_pb2.PickRouteRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.PickRouteResponse:
        self._seen(context)
        return router_service_pb2.PickRouteResponse(lease_id="l1", deployment=request.model)

    def ReportOutcome(
        self, request: router_service_pb2.ReportOutcomeRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.ReportOutcomeResponse:
        self._seen(context)
        return router_service_pb2.ReportOutcomeResponse(accepted=True)

    def StoreResponse(
        self, request: router_service_pb2.StoreResponseRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.StoreResponseResponse:
        self._seen(context)
        return router_service_pb2.StoreResponseResponse(stored=bool(request.response.id))

    def LoadResponses(
        self, request: router_service_pb2.LoadResponsesRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.LoadResponsesResponse:
        self._seen(context)
        found = [router_service_pb2.StoredResponse(id=i) for i in request.ids]
        return router_service_pb2.LoadResponsesResponse(responses=found)

    def DeleteResponse(
        self, request: router_service_pb2.DeleteResponseRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.DeleteResponseResponse:
        self._seen(context)
        return router_service_pb2.DeleteResponseResponse(deleted=bool(request.id))

    def CreateConversation(
        self,
        request: router_service_pb2.CreateConversationRequest,
        context: grpc.ServicerContext,
    ) -> router_service_pb2.CreateConversationResponse:
        self._seen(context)
        conversation = conversations_pb2.Conversation(id="conv_1")
        return router_service_pb2.CreateConversationResponse(conversation=conversation)

    def LoadConversation(
        self, request: router_service_pb2.LoadConversationRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.LoadConversationResponse:
        self._seen(context)
        conversation = conversations_pb2.Conversation(id=request.id)
        return router_service_pb2.LoadConversationResponse(conversation=conversation)

    def UpdateConversation(
        self,
        request: router_service_pb2.UpdateConversationRequest,
        context: grpc.ServicerContext,
    ) -> router_service_pb2.UpdateConversationResponse:
        self._seen(context)
        conversation = conversations_pb2.Conversation(id=request.id)
        return router_service_pb2.UpdateConversationResponse(conversation=conversation)

    def DeleteConversation(
        self,
        request: router_service_pb2.DeleteConversationRequest,
        context: grpc.ServicerContext,
    ) -> router_service_pb2.DeleteConversationResponse:
        self._seen(context)
        return router_service_pb2.DeleteConversationResponse(deleted=bool(request.id))

    def StartBackgroundResponse(
        self,
        request: router_service_pb2.StartBackgroundResponseRequest,
        context: grpc.ServicerContext,
    ) -> router_service_pb2.StartBackgroundResponseResponse:
        self._seen(context)
        queued = request.response_json
        return router_service_pb2.StartBackgroundResponseResponse(response_json=queued)

    def CancelResponse(
        self, request: router_service_pb2.CancelResponseRequest, context: grpc.ServicerContext
    ) -> router_service_pb2.CancelResponseResponse:
        self._seen(context)
        return router_service_pb2.CancelResponseResponse(response_json=f'{{"id": "{request.id}"}}')

    def GetRoutingStats(
        self, request: admin_service_pb2.GetRoutingStatsRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.GetRoutingStatsResponse:
        self._seen(context)
        return admin_service_pb2.GetRoutingStatsResponse()

    def GetServerInfo(
        self, request: admin_service_pb2.GetServerInfoRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.GetServerInfoResponse:
        self._seen(context)
        return admin_service_pb2.GetServerInfoResponse(replica=self.name)

    def ListClients(
        self, request: admin_service_pb2.ListClientsRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.ListClientsResponse:
        self._seen(context)
        app = admin_service_pb2.ClientStatus(name=self.name)
        return admin_service_pb2.ListClientsResponse(clients=[app])

    def PurgeCache(
        self, request: admin_service_pb2.PurgeCacheRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.PurgeCacheResponse:
        self._seen(context)
        self.purged.append(request.model)
        return admin_service_pb2.PurgeCacheResponse()

    def ListKeys(
        self, request: admin_service_pb2.ListKeysRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.ListKeysResponse:
        self._seen(context)
        return admin_service_pb2.ListKeysResponse(keys=[admin_service_pb2.KeyStatus()])

    def SetKeyEnabled(
        self, request: admin_service_pb2.SetKeyEnabledRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.SetKeyEnabledResponse:
        self._seen(context)
        key = admin_service_pb2.KeyStatus(fingerprint=request.fingerprint)
        return admin_service_pb2.SetKeyEnabledResponse(key=key)


@contextmanager
def serving(
    name: str, credentials: grpc.ServerCredentials | None = None
) -> Iterator[tuple[SyncFakeRouter, str]]:
    """A threaded server on a free loopback port (TLS with `credentials`)."""
    router = SyncFakeRouter(name)  # type: ignore[abstract]  # no sync MediaStream
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=SERVER_OPTIONS)
    router_service_pb2_grpc.add_RouterServiceServicer_to_server(router, server)
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(router, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield router, f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait(WAIT)


@pytest.fixture
def router() -> Iterator[tuple[SyncFakeRouter, str]]:
    with serving("a") as served:
        yield served


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
        client.purge_cache()
    assert fake.purged == [""]
    assert fake.calls == 18
    assert fake.metadata[0]["authorization"] == "Bearer sk-1"
    assert fake.metadata[0]["x-trace"] == "t"


def test_background_response_calls(router: tuple[SyncFakeRouter, str]) -> None:
    fake, target = router
    with SyncRouterClient(target) as client:
        start = router_service_pb2.StartBackgroundResponseRequest(response_json='{"id": "r"}')
        assert client.start_background_response(start).response_json == '{"id": "r"}'
        cancel = router_service_pb2.CancelResponseRequest(id="resp_1")
        assert client.cancel_response(cancel).response_json == '{"id": "resp_1"}'
    assert fake.calls == 2


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
