"""``RouterClient``'s and ``SyncRouterClient``'s calls on client keys issued at run time
(AdminService.IssueClientKey, ListClientKeys, RevokeClientKey; an admin-scoped client key), and
on ephemeral Realtime client secrets and WebRTC Realtime calls (RouterService.
CreateRealtimeClientSecret, CreateRealtimeCall, HangupRealtimeCall; the `chat` scope: any client
that may open Realtime sessions)."""

from __future__ import annotations

from typing import Any

from clients._base import USE_CLIENT_DEFAULT, Timeout
from clients._metadata import Metadata
from clients.switchboard.v1 import admin_service_pb2 as pb
from clients.switchboard.v1 import router_service_pb2 as rpb

__all__ = ["ClientKeyCalls", "SyncClientKeyCalls"]


def _issue_request(client: str, label: str, ttl_s: float | None) -> pb.IssueClientKeyRequest:
    return pb.IssueClientKeyRequest(client=client, label=label, ttl_s=ttl_s)


class ClientKeyCalls:
    """Issue, list and revoke client keys."""

    async def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    async def issue_client_key(
        self,
        client: str,
        label: str = "",
        ttl_s: float | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.IssueClientKeyResponse:
        """A new key acting as the configured `client` (its `key`: shown this once)."""
        req = _issue_request(client, label, ttl_s)
        response: pb.IssueClientKeyResponse = await self._unary(
            "admin", "IssueClientKey", req, timeout, metadata
        )
        return response

    async def list_client_keys(
        self,
        client: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.ListClientKeysResponse:
        """The live issued keys (of `client`; "": all), by fingerprint, never a key."""
        req = pb.ListClientKeysRequest(client=client)
        response: pb.ListClientKeysResponse = await self._unary(
            "admin", "ListClientKeys", req, timeout, metadata
        )
        return response

    async def revoke_client_key(
        self,
        key_id: str,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.RevokeClientKeyResponse:
        """Refuse the issued key `key_id` from now on, on every replica."""
        req = pb.RevokeClientKeyRequest(id=key_id)
        response: pb.RevokeClientKeyResponse = await self._unary(
            "admin", "RevokeClientKey", req, timeout, metadata
        )
        return response

    async def create_realtime_client_secret(
        self,
        request: rpb.CreateRealtimeClientSecretRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> rpb.CreateRealtimeClientSecretResponse:
        """An ephemeral key (`ek_...`) for a browser's Realtime sessions of the session
        config's model, each started with that config, for `expires_after_s` (10 to 7200;
        unset: 600)."""
        response: rpb.CreateRealtimeClientSecretResponse = await self._unary(
            "router", "CreateRealtimeClientSecret", request, timeout, metadata
        )
        return response

    async def create_realtime_call(
        self,
        request: rpb.CreateRealtimeCallRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> rpb.CreateRealtimeCallResponse:
        """Post a WebRTC SDP offer to a realtime deployment: the upstream's SDP answer and
        call id."""
        response: rpb.CreateRealtimeCallResponse = await self._unary(
            "router", "CreateRealtimeCall", request, timeout, metadata
        )
        return response

    async def hangup_realtime_call(
        self,
        call_id: str,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> rpb.HangupRealtimeCallResponse:
        """End a call `create_realtime_call` made, from any replica."""
        req = rpb.HangupRealtimeCallRequest(call_id=call_id)
        response: rpb.HangupRealtimeCallResponse = await self._unary(
            "router", "HangupRealtimeCall", req, timeout, metadata
        )
        return response


class SyncClientKeyCalls:
    """The same calls as :class:`ClientKeyCalls`, blocking."""

    def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    def issue_client_key(
        self,
        client: str,
        label: str = "",
        ttl_s: float | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.IssueClientKeyResponse:
        """A new key acting as the configured `client` (its `key`: shown this once)."""
        req = _issue_request(client, label, ttl_s)
        response: pb.IssueClientKeyResponse = self._unary(
            "admin", "IssueClientKey", req, timeout, metadata
        )
        return response

    def list_client_keys(
        self,
        client: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.ListClientKeysResponse:
        """The live issued keys (of `client`; "": all), by fingerprint, never a key."""
        req = pb.ListClientKeysRequest(client=client)
        response: pb.ListClientKeysResponse = self._unary(
            "admin", "ListClientKeys", req, timeout, metadata
        )
        return response

    def revoke_client_key(
        self,
        key_id: str,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.RevokeClientKeyResponse:
        """Refuse the issued key `key_id` from now on, on every replica."""
        req = pb.RevokeClientKeyRequest(id=key_id)
        response: pb.RevokeClientKeyResponse = self._unary(
            "admin", "RevokeClientKey", req, timeout, metadata
        )
        return response

    def create_realtime_client_secret(
        self,
        request: rpb.CreateRealtimeClientSecretRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> rpb.CreateRealtimeClientSecretResponse:
        """An ephemeral key (`ek_...`) for a browser's Realtime sessions of the session
        config's model, each started with that config, for `expires_after_s` (10 to 7200;
        unset: 600)."""
        response: rpb.CreateRealtimeClientSecretResponse = self._unary(
            "router", "CreateRealtimeClientSecret", request, timeout, metadata
        )
        return response

    def create_realtime_call(
        self,
        request: rpb.CreateRealtimeCallRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> rpb.CreateRealtimeCallResponse:
        """Post a WebRTC SDP offer to a realtime deployment: the upstream's SDP answer and
        call id."""
        response: rpb.CreateRealtimeCallResponse = self._unary(
            "router", "CreateRealtimeCall", request, timeout, metadata
        )
        return response

    def hangup_realtime_call(
        self,
        call_id: str,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> rpb.HangupRealtimeCallResponse:
        """End a call `create_realtime_call` made, from any replica."""
        req = rpb.HangupRealtimeCallRequest(call_id=call_id)
        response: rpb.HangupRealtimeCallResponse = self._unary(
            "router", "HangupRealtimeCall", req, timeout, metadata
        )
        return response
