"""gRPC server reflection under both its names: `grpc.reflection.v1` and `v1alpha`.

grpcio-reflection serves only v1alpha. Clients built on the v1 proto (what grpc-go, grpc-java and
@grpc/reflection ship as current; a Node caller that loads it gets UNIMPLEMENTED from a v1alpha-only
server) need v1. Both versions have the same messages, field for field, so v1alpha's servicer
answers v1 calls as they are; v1's descriptor, derived from v1alpha's by renaming its package, is
added to the default pool so that reflection also describes the v1 service it lists.

Built on the first reflection call, not at start-up: grpcio-reflection and protobuf's
`descriptor_pb2` (which reflection needs to describe files) are ~0.8 MiB of an idle router's
resident memory, for a service that tools (grpcurl, Postman) call now and then
(benchmarks/README.md, 2026-12-05).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc

__all__ = ["REFLECTION_SERVICES", "enable_reflection"]

_V1ALPHA = "grpc.reflection.v1alpha"
_V1 = "grpc.reflection.v1"
_V1_FILE = "grpc/reflection/v1/reflection.proto"
_METHOD = "ServerReflectionInfo"
REFLECTION_SERVICES = (f"{_V1}.ServerReflection", f"{_V1ALPHA}.ServerReflection")
_METHODS = frozenset(f"/{service}/{_METHOD}" for service in REFLECTION_SERVICES)


def _v1_descriptor() -> None:
    """Add v1's file to the default pool (once per process): v1alpha's, renamed."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    from grpc_reflection.v1alpha import reflection_pb2

    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = _V1_FILE, _V1
    old, new = f".{_V1ALPHA}.", f".{_V1}."
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # a message field (an empty one means a scalar)
                field.type_name = field.type_name.replace(old, new, 1)
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, new, 1)
            method.output_type = method.output_type.replace(old, new, 1)
    pool.AddSerializedFile(proto.SerializeToString())


def _servicer_class() -> type[Any]:
    """grpcio-reflection's servicer, which also takes a method for a symbol.

    The reflection proto's `file_containing_symbol` is `<package>.<service>[.<method>]` or a
    type; grpc-go and grpc-java answer a method with its service's file (`grpcurl describe
    pkg.Service.Method` asks that), but the protobuf descriptor pool grpcio-reflection looks
    symbols up in has no methods: it answered NOT_FOUND. Its lookup is a method of its own
    (`_file_containing_symbol`, private: tests/router_service/server/test_reflection.py holds
    it to this)."""
    from google.protobuf import descriptor_pool
    from grpc_reflection.v1alpha import reflection

    class MethodsAsSymbols(reflection.aio.ReflectionServicer):  # type: ignore[misc]  # untyped
        def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
            answer = super()._file_containing_symbol(request, fully_qualified_name)
            if answer.HasField("error_response"):
                service, _, method = fully_qualified_name.rpartition(".")
                try:
                    found = descriptor_pool.Default().FindServiceByName(service)
                except KeyError:
                    return answer
                if method in found.methods_by_name:
                    return super()._file_containing_symbol(request, service)
            return answer

    return MethodsAsSymbols


class _LazyReflection(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc is untyped
    """Both reflection services; grpcio-reflection is imported by the first call to either."""

    def __init__(self, service_names: Iterable[str]) -> None:
        self._names = (*service_names, *REFLECTION_SERVICES)
        self._handler: grpc.RpcMethodHandler | None = None

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        if handler_call_details.method not in _METHODS:
            return None
        if self._handler is None:
            self._handler = self._built()
        return self._handler

    def _built(self) -> grpc.RpcMethodHandler:
        from grpc_reflection.v1alpha import reflection_pb2

        _v1_descriptor()
        servicer = _servicer_class()(self._names)
        return grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection v1 and v1alpha for `service_names` and themselves."""
    server.add_generic_rpc_handlers((_LazyReflection(service_names),))
