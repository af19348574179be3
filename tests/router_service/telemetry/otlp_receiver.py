"""A real OTLP/gRPC collector for tests: opentelemetry-proto's generated TraceService and
MetricsService servicers on a grpc.aio server on loopback, recording what arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.helpers import serve_grpc

__all__ = ["Receiver", "start_receiver"]


@dataclass
class Receiver:
    """What the collector received: (resource attributes, span or metric)."""

    spans: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    metrics: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    endpoint: str = ""

    async def Export(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    self.spans += [(_resource(resource), span) for span in scope.spans]
            return trace_service_pb2.ExportTraceServiceResponse()
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                self.metrics += [(_resource(resource), metric) for metric in scope.metrics]
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def span_names(self) -> set[str]:
        return {span.name for _, span in self.spans}

    def metric_names(self) -> set[str]:
        return {metric.name for _, metric in self.metrics}


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver

    async def Export(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._receiver.Export(request, context)


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver

    async def Export(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._receiver.Export(request, context)


def _resource(resource: Any) -> dict[str, Any]:
    return {a.key: a.value.string_value for a in resource.resource.attributes}


@asynccontextmanager
async def start_receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    async with serve_grpc(
        (trace_service_pb2_grpc.add_TraceServiceServicer_to_server, _Traces(found)),
        (metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server, _Metrics(found)),
    ) as target:
        found.endpoint = f"http://{target}"
        yield found
