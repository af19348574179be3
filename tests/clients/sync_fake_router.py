"""A threaded fake RouterService / AdminService for SyncRouterClient's tests, and its server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import pytest

from clients import ErrorDetails, to_grpc_status
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

    def ResumeResponse(
        self, request: router_service_pb2.ResumeResponseRequest, context: grpc.ServicerContext
    ) -> Iterator[router_service_pb2.ResumeResponseResponse]:
        self._seen(context)
        event = f'{{"id": "{request.id}", "after": {request.starting_after}}}'
        yield router_service_pb2.ResumeResponseResponse(event_json=event)

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

    def CancelClientBatch(
        self, request: admin_service_pb2.CancelClientBatchRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.CancelClientBatchResponse:
        self._seen(context)
        return admin_service_pb2.CancelClientBatchResponse(client=request.reason)

    def IssueClientKey(
        self, request: admin_service_pb2.IssueClientKeyRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.IssueClientKeyResponse:
        self._seen(context)
        info = admin_service_pb2.ClientKey(client=request.client, label=request.label)
        return admin_service_pb2.IssueClientKeyResponse(key=f"ttl={request.ttl_s}", info=info)

    def ListClientKeys(
        self, request: admin_service_pb2.ListClientKeysRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.ListClientKeysResponse:
        self._seen(context)
        listed = admin_service_pb2.ClientKey(client=request.client or self.name)
        return admin_service_pb2.ListClientKeysResponse(keys=[listed])

    def RevokeClientKey(
        self, request: admin_service_pb2.RevokeClientKeyRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.RevokeClientKeyResponse:
        self._seen(context)
        return admin_service_pb2.RevokeClientKeyResponse(
            key=admin_service_pb2.ClientKey(id=request.id)
        )

    def ListJobs(
        self, request: admin_service_pb2.ListJobsRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.ListJobsResponse:
        self._seen(context)
        return admin_service_pb2.ListJobsResponse(replica=f"{self.name}/{request.limit}")

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
