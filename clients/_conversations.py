"""The conversation calls of ``RouterClient`` and ``SyncRouterClient`` (OpenAI's Conversations
API, kept by the router per client; ``chat`` scope, not counted in rpm), as mixins over each
client's one ``_unary``: kept apart so that each client module stays one screenful."""

from __future__ import annotations

from typing import Any

from clients._base import USE_CLIENT_DEFAULT, Timeout
from clients._metadata import Metadata
from clients.switchboard.v1 import router_service_pb2 as pb

__all__ = ["ConversationCalls", "SyncConversationCalls"]


class ConversationCalls:
    """``RouterClient``'s conversation calls."""

    async def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    async def create_conversation(
        self,
        req: pb.CreateConversationRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.CreateConversationResponse:
        """Start a conversation of the calling client, with its first items."""
        response: pb.CreateConversationResponse = await self._unary(
            "router", "CreateConversation", req, timeout, metadata
        )
        return response

    async def load_conversation(
        self,
        req: pb.LoadConversationRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.LoadConversationResponse:
        """One of the calling client's conversations with its items; NOT_FOUND when none."""
        response: pb.LoadConversationResponse = await self._unary(
            "router", "LoadConversation", req, timeout, metadata
        )
        return response

    async def update_conversation(
        self,
        req: pb.UpdateConversationRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.UpdateConversationResponse:
        """Change a conversation: its metadata, items added, items deleted."""
        response: pb.UpdateConversationResponse = await self._unary(
            "router", "UpdateConversation", req, timeout, metadata
        )
        return response

    async def delete_conversation(
        self,
        req: pb.DeleteConversationRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.DeleteConversationResponse:
        """Delete one of the calling client's conversations; NOT_FOUND when none."""
        response: pb.DeleteConversationResponse = await self._unary(
            "router", "DeleteConversation", req, timeout, metadata
        )
        return response


class SyncConversationCalls:
    """``SyncRouterClient``'s conversation calls (as :class:`ConversationCalls`')."""

    def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    def create_conversation(
        self,
        req: pb.CreateConversationRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.CreateConversationResponse:
        """Start a conversation of the calling client, with its first items."""
        response: pb.CreateConversationResponse = self._unary(
            "router", "CreateConversation", req, timeout, metadata
        )
        return response

    def load_conversation(
        self,
        req: pb.LoadConversationRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.LoadConversationResponse:
        """One of the calling client's conversations with its items; NOT_FOUND when none."""
        response: pb.LoadConversationResponse = self._unary(
            "router", "LoadConversation", req, timeout, metadata
        )
        return response

    def update_conversation(
        self,
        req: pb.UpdateConversationRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.UpdateConversationResponse:
        """Change a conversation: its metadata, items added, items deleted."""
        response: pb.UpdateConversationResponse = self._unary(
            "router", "UpdateConversation", req, timeout, metadata
        )
        return response

    def delete_conversation(
        self,
        req: pb.DeleteConversationRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.DeleteConversationResponse:
        """Delete one of the calling client's conversations; NOT_FOUND when none."""
        response: pb.DeleteConversationResponse = self._unary(
            "router", "DeleteConversation", req, timeout, metadata
        )
        return response
