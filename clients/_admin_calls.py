"""The AdminService calls of ``RouterClient`` and ``SyncRouterClient`` (an admin-scoped client
key), as mixins over each client's one ``_unary``."""

from __future__ import annotations

from typing import Any

from clients._base import USE_CLIENT_DEFAULT, Timeout
from clients._metadata import Metadata
from clients.switchboard.v1 import admin_service_pb2

__all__ = ["AdminCalls", "SyncAdminCalls"]


class AdminCalls:
    """Operating the router: keys, routing statistics, the replica, clients, jobs, the cache."""

    async def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    async def cancel_client_batch(
        self,
        batch_id: str,
        reason: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.CancelClientBatchResponse:
        """Cancel any client's batch not ended, by id (audited with `reason`)."""
        req = admin_service_pb2.CancelClientBatchRequest(id=batch_id, reason=reason)
        response: admin_service_pb2.CancelClientBatchResponse = await self._unary(
            "admin", "CancelClientBatch", req, timeout, metadata
        )
        return response

    async def list_jobs(
        self,
        limit: int = 0,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.ListJobsResponse:
        """The batches not ended (every replica's), and the background responses and Realtime
        sessions of the replica that answers; at most `limit` of each (0: the router's default)."""
        req = admin_service_pb2.ListJobsRequest(limit=limit)
        response: admin_service_pb2.ListJobsResponse = await self._unary(
            "admin", "ListJobs", req, timeout, metadata
        )
        return response

    async def list_clients(
        self,
        req: admin_service_pb2.ListClientsRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.ListClientsResponse:
        """Each configured client with its limits and what it used (never a key)."""
        req = req or admin_service_pb2.ListClientsRequest()
        response: admin_service_pb2.ListClientsResponse = await self._unary(
            "admin", "ListClients", req, timeout, metadata
        )
        return response

    async def purge_cache(
        self,
        model: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.PurgeCacheResponse:
        """Forget the response cache's answers of `model` ("": of every model); `queued` in
        the answer: the replica could not reach the state store, the others forget them once
        it answers again."""
        req = admin_service_pb2.PurgeCacheRequest(model=model)
        response: admin_service_pb2.PurgeCacheResponse = await self._unary(
            "admin", "PurgeCache", req, timeout, metadata
        )
        return response

    async def list_keys(
        self,
        req: admin_service_pb2.ListKeysRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.ListKeysResponse:
        response: admin_service_pb2.ListKeysResponse = await self._unary(
            "admin", "ListKeys", req or admin_service_pb2.ListKeysRequest(), timeout, metadata
        )
        return response

    async def set_key_enabled(
        self,
        req: admin_service_pb2.SetKeyEnabledRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.SetKeyEnabledResponse:
        response: admin_service_pb2.SetKeyEnabledResponse = await self._unary(
            "admin", "SetKeyEnabled", req, timeout, metadata
        )
        return response

    async def get_routing_stats(
        self,
        req: admin_service_pb2.GetRoutingStatsRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.GetRoutingStatsResponse:
        response: admin_service_pb2.GetRoutingStatsResponse = await self._unary(
            "admin",
            "GetRoutingStats",
            req or admin_service_pb2.GetRoutingStatsRequest(),
            timeout,
            metadata,
        )
        return response

    async def get_server_info(
        self,
        req: admin_service_pb2.GetServerInfoRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.GetServerInfoResponse:
        response: admin_service_pb2.GetServerInfoResponse = await self._unary(
            "admin",
            "GetServerInfo",
            req or admin_service_pb2.GetServerInfoRequest(),
            timeout,
            metadata,
        )
        return response


class SyncAdminCalls:
    """``SyncRouterClient``'s AdminService calls (as :class:`AdminCalls`')."""

    def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    def cancel_client_batch(
        self,
        batch_id: str,
        reason: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.CancelClientBatchResponse:
        """Cancel any client's batch not ended, by id (audited with `reason`)."""
        req = admin_service_pb2.CancelClientBatchRequest(id=batch_id, reason=reason)
        response: admin_service_pb2.CancelClientBatchResponse = self._unary(
            "admin", "CancelClientBatch", req, timeout, metadata
        )
        return response

    def list_jobs(
        self,
        limit: int = 0,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.ListJobsResponse:
        """The batches not ended (every replica's), and the background responses and Realtime
        sessions of the replica that answers; at most `limit` of each (0: the router's default)."""
        req = admin_service_pb2.ListJobsRequest(limit=limit)
        response: admin_service_pb2.ListJobsResponse = self._unary(
            "admin", "ListJobs", req, timeout, metadata
        )
        return response

    def list_clients(
        self,
        req: admin_service_pb2.ListClientsRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.ListClientsResponse:
        """Each configured client with its limits and what it used (never a key)."""
        req = req or admin_service_pb2.ListClientsRequest()
        response: admin_service_pb2.ListClientsResponse = self._unary(
            "admin", "ListClients", req, timeout, metadata
        )
        return response

    def list_keys(
        self,
        req: admin_service_pb2.ListKeysRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.ListKeysResponse:
        response: admin_service_pb2.ListKeysResponse = self._unary(
            "admin", "ListKeys", req or admin_service_pb2.ListKeysRequest(), timeout, metadata
        )
        return response

    def purge_cache(
        self,
        model: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.PurgeCacheResponse:
        """Forget the response cache's answers of `model` ("": of every model); `queued` in
        the answer: the replica could not reach the state store, the others forget them once
        it answers again."""
        req = admin_service_pb2.PurgeCacheRequest(model=model)
        response: admin_service_pb2.PurgeCacheResponse = self._unary(
            "admin", "PurgeCache", req, timeout, metadata
        )
        return response

    def set_key_enabled(
        self,
        req: admin_service_pb2.SetKeyEnabledRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.SetKeyEnabledResponse:
        response: admin_service_pb2.SetKeyEnabledResponse = self._unary(
            "admin", "SetKeyEnabled", req, timeout, metadata
        )
        return response

    def get_routing_stats(
        self,
        req: admin_service_pb2.GetRoutingStatsRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.GetRoutingStatsResponse:
        response: admin_service_pb2.GetRoutingStatsResponse = self._unary(
            "admin",
            "GetRoutingStats",
            req or admin_service_pb2.GetRoutingStatsRequest(),
            timeout,
            metadata,
        )
        return response

    def get_server_info(
        self,
        req: admin_service_pb2.GetServerInfoRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.GetServerInfoResponse:
        response: admin_service_pb2.GetServerInfoResponse = self._unary(
            "admin",
            "GetServerInfo",
            req or admin_service_pb2.GetServerInfoRequest(),
            timeout,
            metadata,
        )
        return response
