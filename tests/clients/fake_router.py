"""A small RouterService/AdminService servicer on a real grpc.aio server, for the client tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from clients.switchboard.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    chat_pb2,
    conversations_pb2,
    media_pb2,
    router_service_pb2,
    router_service_pb2_grpc,
)
from tests.helpers import FilesUnimplemented, serve_grpc

# The router's server settings that accept the client's keepalive pings (see clients._base).
SERVER_OPTIONS = [
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def chunk(text: str) -> router_service_pb2.ChatStreamResponse:
    completion_chunk = chat_pb2.ChatCompletionChunk(id="c")
    completion_chunk.choices.add(index=0, delta=chat_pb2.ChatMessage(text=text))
    return router_service_pb2.ChatStreamResponse(chunk=completion_chunk)


class FakeRouter(FilesUnimplemented, admin_service_pb2_grpc.AdminServiceServicer):
    """Answers with its own name; ``model="hang"`` blocks until cancelled, and says so (a stream
    after two chunks; ``"hang-first"`` before any)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.purged: list[str] = []
        self.calls = 0
        self.metadata: list[dict[str, str | bytes]] = []
        self.peers: list[str] = []  # each call's peer address: a new port is a new connection
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.never = asyncio.Event()

    def _seen(self, context: grpc.aio.ServicerContext) -> None:
        self.calls += 1
        self.started.set()
        self.metadata.append(dict(context.invocation_metadata()))
        self.peers.append(context.peer())

    async def _hang(self) -> None:
        """Wait until the call ends; the caller's cancellation must reach us."""
        try:
            await self.never.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    def _watch(self, context: grpc.aio.ServicerContext) -> None:
        """Observe a call that ends without this server sending its status: the caller cancelled
        it (or its deadline passed). The done callback also sees a cancellation that lands while
        a stream handler is suspended in a `yield`, where the handler itself gets no
        CancelledError (grpc cancels the task that drives the generator, not the generator)."""

        def done(ctx: grpc.aio.ServicerContext) -> None:
            if not ctx.done():  # done() is "status sent"
                self.cancelled.set()

        context.add_done_callback(done)

    async def Chat(
        self, request: router_service_pb2.ChatRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ChatResponse:
        self._seen(context)
        self._watch(context)
        if request.params.model == "hang":
            await self._hang()
        completion = chat_pb2.ChatCompletion(id=self.name, model=request.params.model)
        return router_service_pb2.ChatResponse(completion=completion)

    async def ChatStream(
        self, request: router_service_pb2.ChatStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_service_pb2.ChatStreamResponse]:
        self._seen(context)
        self._watch(context)
        if request.params.model == "hang-first":
            await self._hang()
        for text in ("Hel", "lo"):
            yield chunk(text)
        if request.params.model == "hang":
            await self._hang()
        yield router_service_pb2.ChatStreamResponse(summary=router_service_pb2.StreamSummary())

    async def Embed(
        self, request: router_service_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.EmbedResponse:
        self._seen(context)
        return router_service_pb2.EmbedResponse()

    async def Media(
        self, request: router_service_pb2.MediaRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.MediaResponse:
        self._seen(context)
        return router_service_pb2.MediaResponse()

    async def MediaStream(
        self, request: router_service_pb2.MediaStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_service_pb2.MediaStreamResponse]:
        self._seen(context)
        self._watch(context)
        chunk = media_pb2.MediaChunk(content_type="audio/mpeg", data=self.name.encode())
        yield router_service_pb2.MediaStreamResponse(chunk=chunk)
        if request.params.model == "hang":
            await self._hang()
        yield router_service_pb2.MediaStreamResponse(summary=router_service_pb2.StreamSummary())

    async def ListModels(
        self, request: router_service_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ListModelsResponse:
        self._seen(context)
        return router_service_pb2.ListModelsResponse(
            models=[router_service_pb2.ModelInfo(id=self.name)]
        )

    async def PickRoute(
        self, request: router_service_pb2.PickRouteRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.PickRouteResponse:
        self._seen(context)
        return router_service_pb2.PickRouteResponse(lease_id="l1", deployment=request.model)

    async def ReportOutcome(
        self, request: router_service_pb2.ReportOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ReportOutcomeResponse:
        self._seen(context)
        return router_service_pb2.ReportOutcomeResponse(accepted=request.lease_id == "l1")

    async def StoreResponse(
        self, request: router_service_pb2.StoreResponseRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.StoreResponseResponse:
        self._seen(context)
        return router_service_pb2.StoreResponseResponse(stored=bool(request.response.id))

    async def LoadResponses(
        self, request: router_service_pb2.LoadResponsesRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.LoadResponsesResponse:
        self._seen(context)
        found = [router_service_pb2.StoredResponse(id=i) for i in request.ids]
        return router_service_pb2.LoadResponsesResponse(responses=found)

    async def DeleteResponse(
        self, request: router_service_pb2.DeleteResponseRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.DeleteResponseResponse:
        self._seen(context)
        return router_service_pb2.DeleteResponseResponse(deleted=bool(request.id))

    async def CreateConversation(
        self,
        request: router_service_pb2.CreateConversationRequest,
        context: grpc.aio.ServicerContext,
    ) -> router_service_pb2.CreateConversationResponse:
        self._seen(context)
        conversation = conversations_pb2.Conversation(id="conv_1")
        return router_service_pb2.CreateConversationResponse(conversation=conversation)

    async def LoadConversation(
        self, request: router_service_pb2.LoadConversationRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.LoadConversationResponse:
        self._seen(context)
        conversation = conversations_pb2.Conversation(id=request.id)
        return router_service_pb2.LoadConversationResponse(conversation=conversation)

    async def UpdateConversation(
        self,
        request: router_service_pb2.UpdateConversationRequest,
        context: grpc.aio.ServicerContext,
    ) -> router_service_pb2.UpdateConversationResponse:
        self._seen(context)
        conversation = conversations_pb2.Conversation(id=request.id)
        return router_service_pb2.UpdateConversationResponse(conversation=conversation)

    async def DeleteConversation(
        self,
        request: router_service_pb2.DeleteConversationRequest,
        context: grpc.aio.ServicerContext,
    ) -> router_service_pb2.DeleteConversationResponse:
        self._seen(context)
        return router_service_pb2.DeleteConversationResponse(deleted=bool(request.id))

    async def StartBackgroundResponse(
        self,
        request: router_service_pb2.StartBackgroundResponseRequest,
        context: grpc.aio.ServicerContext,
    ) -> router_service_pb2.StartBackgroundResponseResponse:
        self._seen(context)
        queued = request.response_json
        return router_service_pb2.StartBackgroundResponseResponse(response_json=queued)

    async def CancelResponse(
        self, request: router_service_pb2.CancelResponseRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.CancelResponseResponse:
        self._seen(context)
        return router_service_pb2.CancelResponseResponse(response_json=f'{{"id": "{request.id}"}}')

    async def ResumeResponse(
        self, request: router_service_pb2.ResumeResponseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_service_pb2.ResumeResponseResponse]:
        self._seen(context)
        event = f'{{"id": "{request.id}", "after": {request.starting_after}}}'
        yield router_service_pb2.ResumeResponseResponse(event_json=event)

    async def GetRoutingStats(
        self, request: admin_service_pb2.GetRoutingStatsRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.GetRoutingStatsResponse:
        self._seen(context)
        status = admin_service_pb2.DeploymentStatus(deployment="openai/gpt")
        return admin_service_pb2.GetRoutingStatsResponse(deployments=[status])

    async def GetServerInfo(
        self, request: admin_service_pb2.GetServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.GetServerInfoResponse:
        self._seen(context)
        return admin_service_pb2.GetServerInfoResponse(replica=self.name)

    async def ListClients(
        self, request: admin_service_pb2.ListClientsRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.ListClientsResponse:
        self._seen(context)
        app = admin_service_pb2.ClientStatus(name=self.name)
        return admin_service_pb2.ListClientsResponse(clients=[app])

    async def CancelClientBatch(
        self, request: admin_service_pb2.CancelClientBatchRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.CancelClientBatchResponse:
        self._seen(context)
        return admin_service_pb2.CancelClientBatchResponse(client=request.reason)

    async def IssueClientKey(
        self, request: admin_service_pb2.IssueClientKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.IssueClientKeyResponse:
        self._seen(context)
        info = admin_service_pb2.ClientKey(client=request.client, label=request.label)
        return admin_service_pb2.IssueClientKeyResponse(key=f"ttl={request.ttl_s}", info=info)

    async def ListClientKeys(
        self, request: admin_service_pb2.ListClientKeysRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.ListClientKeysResponse:
        self._seen(context)
        listed = admin_service_pb2.ClientKey(client=request.client or self.name)
        return admin_service_pb2.ListClientKeysResponse(keys=[listed])

    async def RevokeClientKey(
        self, request: admin_service_pb2.RevokeClientKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.RevokeClientKeyResponse:
        self._seen(context)
        return admin_service_pb2.RevokeClientKeyResponse(
            key=admin_service_pb2.ClientKey(id=request.id)
        )

    async def ListJobs(
        self, request: admin_service_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.ListJobsResponse:
        self._seen(context)
        return admin_service_pb2.ListJobsResponse(replica=f"{self.name}/{request.limit}")

    async def PurgeCache(
        self, request: admin_service_pb2.PurgeCacheRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.PurgeCacheResponse:
        self._seen(context)
        self.purged.append(request.model)
        return admin_service_pb2.PurgeCacheResponse()

    async def ListKeys(
        self, request: admin_service_pb2.ListKeysRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.ListKeysResponse:
        self._seen(context)
        key = admin_service_pb2.KeyStatus(fingerprint="fp1", provider=request.provider)
        return admin_service_pb2.ListKeysResponse(keys=[key])

    async def SetKeyEnabled(
        self, request: admin_service_pb2.SetKeyEnabledRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.SetKeyEnabledResponse:
        self._seen(context)
        state = (
            admin_service_pb2.KEY_STATE_ACTIVE
            if request.enabled
            else admin_service_pb2.KEY_STATE_DISABLED
        )
        key = admin_service_pb2.KeyStatus(fingerprint=request.fingerprint, state=state)
        return admin_service_pb2.SetKeyEnabledResponse(key=key)


@asynccontextmanager
async def serving(
    name: str, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[tuple[FakeRouter, str]]:
    """A `FakeRouter` called `name` on a loopback address (`serve_grpc`'s `host`, `port`)."""
    router = FakeRouter(name)
    async with serve_grpc(
        (router_service_pb2_grpc.add_RouterServiceServicer_to_server, router),
        (admin_service_pb2_grpc.add_AdminServiceServicer_to_server, router),
        options=SERVER_OPTIONS,
        host=host,
        port=port,
    ) as target:
        yield router, target


def chat_request(model: str = "m") -> router_service_pb2.ChatRequest:
    return router_service_pb2.ChatRequest(params=chat_pb2.ChatParams(model=model))


def stream_request(model: str = "m") -> router_service_pb2.ChatStreamRequest:
    return router_service_pb2.ChatStreamRequest(params=chat_pb2.ChatParams(model=model))


async def within(awaitable: asyncio.Event, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        await awaitable.wait()
