"""The router's services served by their generic handlers only, built from their descriptors.

The generated `add_*Servicer_to_server` functions give the server each service twice: a generic
handler (`add_generic_rpc_handlers`) and every method again as a registered method
(`add_registered_method_handlers`). For each registered method grpc.aio keeps a task waiting for
that method's next call, and waits on all of them for every call that arrives (an
`asyncio.wait` over ~46 tasks per request: ~130 Python calls and their done-callbacks, 8 % of the
Python calls of a plain chat request through edge + router, and one more share with every RPC
added). The generic handler serves the same methods, with the same interceptors, through one
dictionary lookup, so only it is added (benchmarks/README.md, 2026-12-05).

It is built here from the service's descriptor (each method's name, streaming kinds and message
classes), as the generated function builds it: the router does not import the generated
`*_pb2_grpc` modules, whose stubs and experimental client API are the callers' (~0.3 MiB of an
idle router's RSS, benchmarks/README.md "Where idle RSS goes")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass

__all__ = ["add_service"]

# A method's handler factory by (client streaming, server streaming).
_KINDS: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_service(service: ServiceDescriptor, servicer: Any, server: grpc.aio.Server) -> None:
    """Serve every method of `service` with `servicer`'s method of its name (one it lacks is
    an AttributeError here, at start-up), through one generic handler."""
    handlers = {}
    for method in service.methods:
        kind = _KINDS[method.client_streaming, method.server_streaming]
        handlers[method.name] = kind(
            getattr(servicer, method.name),
            request_deserializer=GetMessageClass(method.input_type).FromString,
            response_serializer=GetMessageClass(method.output_type).SerializeToString,
        )
    generic = grpc.method_handlers_generic_handler(service.full_name, handlers)
    server.add_generic_rpc_handlers((generic,))
