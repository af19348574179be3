"""What `RouterServicer` gives the feature servicers that serve its methods of one API each
(ResponsesServicer, FilesServicer, RealtimeServicer, RealtimeSecretsServicer,
RealtimeCallsServicer): each is a view of the servicer, built with its module by the feature's
first call (`_features.py`), reading the servicer's current runtime and the process's long
jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import grpc

from router_service.engine import RequestContext
from router_service.guardrails import AnswerGuard
from router_service.runtime import Runtime
from router_service.server._calls import request_context
from router_service.server._long_jobs import LongJobs

if TYPE_CHECKING:
    from router_service.server._background import BackgroundJobs
    from router_service.server._batches import BatchJobs
    from router_service.server._call_watch import CallWatches
    from router_service.server._realtime import LiveSessions

__all__ = ["Servicer", "ServicerHooks"]


class Servicer(Protocol):
    """`RouterServicer` as its feature servicers see it."""

    runtime: Runtime  # replaced whole by a config reload
    long_jobs: LongJobs

    def _answer_guard(
        self, client: str, model: str, method: str, grpc_ctx: grpc.aio.ServicerContext
    ) -> AnswerGuard | None: ...


class ServicerHooks:
    """A feature servicer's base: the router servicer's runtime, request context and answer
    guard, and the long jobs of its kind."""

    def __init__(self, servicer: Servicer) -> None:
        self._servicer = servicer

    @property
    def runtime(self) -> Runtime:
        return self._servicer.runtime

    @property
    def jobs(self) -> BackgroundJobs:
        return self._servicer.long_jobs.background

    @property
    def batch_jobs(self) -> BatchJobs:
        return self._servicer.long_jobs.batches

    @property
    def live_sessions(self) -> LiveSessions:
        return self._servicer.long_jobs.realtime

    @property
    def call_watches(self) -> CallWatches:
        return self._servicer.long_jobs.call_watches

    def _context(
        self, model: str, session_id: str, grpc_ctx: grpc.aio.ServicerContext
    ) -> RequestContext:
        return request_context(self._servicer.runtime.clock, model, session_id, grpc_ctx)

    def _answer_guard(
        self, client: str, model: str, method: str, grpc_ctx: grpc.aio.ServicerContext
    ) -> AnswerGuard | None:
        return self._servicer._answer_guard(client, model, method, grpc_ctx)
