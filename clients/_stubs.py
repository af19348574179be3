"""A service's client stub built from its descriptor.

The generated `*_pb2_grpc` modules carry, beside each service's stub, its servicer, the function
that adds it to a server and grpc's experimental client API (~0.15 MiB of an idle edge's Python
heap, for the router's and the admin service's). A client needs only the stub: `DescriptorStub`
makes each method's multi-callable as the generated stub does (the same path, serializers and
`_registered_method`), from the service's descriptor, as the router builds its handlers
(router_service/server/_generic.py; benchmarks/README.md, "Where idle RSS goes")."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass

__all__ = ["DescriptorStub", "check_request", "checked_message"]

# The channel's multi-callable factory by (client streaming, server streaming).
_KINDS = {
    (False, False): "unary_unary",
    (False, True): "unary_stream",
    (True, False): "stream_unary",
    (True, True): "stream_stream",
}


class DescriptorStub:
    """The generated stub of `service` on `channel` (sync or grpc.aio): `stub.Chat(...)`, each
    method's multi-callable made here as the generated stub makes it. Plain instance
    attributes, as there: a read of one costs what it costs on the generated stub."""

    def __init__(self, channel: Any, service: ServiceDescriptor) -> None:
        # Each method's request message, for `check`; not a client-streaming one's, whose call
        # takes no message (its messages are checked as they are sent: `checked_message`).
        self._requests: dict[str, type] = {}
        for method in service.methods:
            make = getattr(channel, _KINDS[method.client_streaming, method.server_streaming])
            request = GetMessageClass(method.input_type)
            call = make(
                f"/{service.full_name}/{method.name}",
                request_serializer=request.SerializeToString,
                response_deserializer=GetMessageClass(method.output_type).FromString,
                _registered_method=True,
            )
            setattr(self, method.name, call)
            if not method.client_streaming:
                self._requests[method.name] = request

    def check(self, rpc: str, request: object) -> None:
        """TypeError, naming the message `rpc` takes, for a `request` that is not one
        (`checked_message`); ~0.15 µs a call."""
        expected = self._requests.get(rpc)
        if expected is not None and type(request) is not expected:
            checked_message(rpc, request, expected)


def checked_message(rpc: str, message: object, expected: type, verb: str = "takes") -> None:
    """TypeError, naming `expected`, for a `message` of `rpc` that is not one. grpc swallows its
    serializer's error (a dict written as OpenAI's JSON, None): grpc.aio then sent the call with
    an empty request, which the router answered as if asked for nothing, and the blocking
    channel failed it INTERNAL "Exception serializing request!"."""
    if type(message) is not expected:
        raise TypeError(
            f"{rpc} {verb} a {expected.__module__}.{expected.__qualname__}, "
            f"not {type(message).__qualname__}"
        )


def check_request(service: ServiceDescriptor, rpc: str, request: object) -> None:
    """`DescriptorStub.check` with no stub (no channel made yet): a client-streaming call's
    messages are checked as they are sent."""
    method = service.methods_by_name[rpc]
    if not method.client_streaming:
        checked_message(rpc, request, GetMessageClass(method.input_type))
