"""gRPC server reflection under both its names: `grpc.reflection.v1` and `v1alpha`.

grpcio-reflection serves only v1alpha. Clients built on the v1 proto (what grpc-go, grpc-java and
@grpc/reflection ship as current; a Node caller that loads it gets UNIMPLEMENTED from a v1alpha-only
server) need v1. Both versions have the same messages, field for field, so v1alpha's servicer
answers v1 calls as they are; v1's descriptor, derived from v1alpha's by renaming its package, is
added to the default pool so that reflection also describes the v1 service it lists.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

__all__ = ["REFLECTION_SERVICES", "enable_reflection"]

_V1ALPHA = reflection_pb2.DESCRIPTOR.package  # "grpc.reflection.v1alpha"
_V1 = "grpc.reflection.v1"
_V1_FILE = "grpc/reflection/v1/reflection.proto"
_METHOD = "ServerReflectionInfo"
REFLECTION_SERVICES = (f"{_V1}.ServerReflection", reflection.SERVICE_NAME)


def _v1_descriptor() -> None:
    """Add v1's file to the default pool (once per process): v1alpha's, renamed."""
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


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection v1 and v1alpha for `service_names` and themselves."""
    _v1_descriptor()
    servicer = reflection.aio.ReflectionServicer((*service_names, *REFLECTION_SERVICES))
    for package in (_V1, _V1ALPHA):
        handler = grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
        service = grpc.method_handlers_generic_handler(
            f"{package}.ServerReflection", {_METHOD: handler}
        )
        server.add_generic_rpc_handlers((service,))
