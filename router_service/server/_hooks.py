"""What `RouterServicer` gives the handler mixins it is made of (ResponsesServicer,
RealtimeServicer, RealtimeCallsServicer): declared once here, defined by RouterServicer itself,
which comes first in the method resolution order."""

from __future__ import annotations

import grpc

from router_service.engine import RequestContext
from router_service.guardrails import AnswerGuard
from router_service.runtime import Runtime

__all__ = ["ServicerHooks"]


class ServicerHooks:
    runtime: Runtime

    def _context(
        self, model: str, session_id: str, grpc_ctx: grpc.aio.ServicerContext
    ) -> RequestContext:
        raise NotImplementedError  # RouterServicer's

    def _answer_guard(
        self, client: str, model: str, method: str, grpc_ctx: grpc.aio.ServicerContext
    ) -> AnswerGuard | None:
        raise NotImplementedError  # RouterServicer's
