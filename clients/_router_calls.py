"""``RouterClient``'s unary calls of the router's own (chat, embeddings, models, routes and
stored responses), as a mixin over its one ``_unary``, as ``_media_calls``' is."""

from __future__ import annotations

from typing import Any

from clients._base import USE_CLIENT_DEFAULT, Timeout
from clients._metadata import Metadata
from clients.switchboard.v1 import router_service_pb2

__all__ = ["RouterCalls"]


class RouterCalls:
    """``RouterClient``'s unary ``RouterService`` calls."""

    async def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    async def chat(
        self,
        req: router_service_pb2.ChatRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> router_service_pb2.ChatResponse:
        response: router_service_pb2.ChatResponse = await self._unary(
            "router", "Chat", req, timeout, metadata
        )
        return response

    async def embed(
        self,
        req: router_service_pb2.EmbedRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> router_service_pb2.EmbedResponse:
        response: router_service_pb2.EmbedResponse = await self._unary(
            "router", "Embed", req, timeout, metadata
        )
        return response

    async def list_models(
        self,
        req: router_service_pb2.ListModelsRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> router_service_pb2.ListModelsResponse:
        response: router_service_pb2.ListModelsResponse = await self._unary(
            "router", "ListModels", req or router_service_pb2.ListModelsRequest(), timeout, metadata
        )
        return response

    async def pick_route(
        self,
        req: router_service_pb2.PickRouteRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> router_service_pb2.PickRouteResponse:
        """A deployment and a leased key for a call the caller makes itself (``route`` scope)."""
        response: router_service_pb2.PickRouteResponse = await self._unary(
            "router", "PickRoute", req, timeout, metadata
        )
        return response

    async def report_outcome(
        self,
        req: router_service_pb2.ReportOutcomeRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> router_service_pb2.ReportOutcomeResponse:
        """Return a :meth:`pick_route` lease with the call's outcome."""
        response: router_service_pb2.ReportOutcomeResponse = await self._unary(
            "router", "ReportOutcome", req, timeout, metadata
        )
        return response

    async def store_response(
        self,
        req: router_service_pb2.StoreResponseRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> router_service_pb2.StoreResponseResponse:
        """Keep a Responses API response for the calling client (``chat`` scope)."""
        response: router_service_pb2.StoreResponseResponse = await self._unary(
            "router", "StoreResponse", req, timeout, metadata
        )
        return response

    async def load_responses(
        self,
        req: router_service_pb2.LoadResponsesRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> router_service_pb2.LoadResponsesResponse:
        """The calling client's stored responses by id; NOT_FOUND names the first missing."""
        response: router_service_pb2.LoadResponsesResponse = await self._unary(
            "router", "LoadResponses", req, timeout, metadata
        )
        return response

    async def delete_response(
        self,
        req: router_service_pb2.DeleteResponseRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> router_service_pb2.DeleteResponseResponse:
        """Delete one of the calling client's stored responses; NOT_FOUND when it has none."""
        response: router_service_pb2.DeleteResponseResponse = await self._unary(
            "router", "DeleteResponse", req, timeout, metadata
        )
        return response
