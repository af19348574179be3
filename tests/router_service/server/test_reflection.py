"""gRPC reflection as other languages' clients ask for it: `grpc.reflection.v1` (the current name,
which grpc-go, grpc-java and Node's @grpc/reflection ship) and `v1alpha` (grpcio-reflection's),
over a real channel; every service either lists is described."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from tests.conftest import RouterHandle

# grpcio-reflection is untyped: its messages are Any to mypy.
Request = reflection_pb2.ServerReflectionRequest
Response = reflection_pb2.ServerReflectionResponse


async def reflect(channel: grpc.aio.Channel, version: str, *requests: Any) -> list[Any]:
    """One reflection stream. Both versions share their messages field for field, so v1alpha's
    generated types speak v1 too."""
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=Request.SerializeToString,
        response_deserializer=Response.FromString,
    )
    return [answer async for answer in call(iter(requests))]


def files(answer: Any) -> list[descriptor_pb2.FileDescriptorProto]:
    assert answer.WhichOneof("message_response") == "file_descriptor_response", answer
    return [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_both_reflection_versions_describe_every_service(
    router: RouterHandle, version: str
) -> None:
    [listed] = await reflect(router.channel, version, Request(list_services=""))
    services = [s.name for s in listed.list_services_response.service]
    assert set(services) >= {
        "switchboard.v1.RouterService",
        "switchboard.v1.AdminService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    answers = await reflect(
        router.channel, version, *(Request(file_containing_symbol=name) for name in services)
    )
    for name, answer in zip(services, answers, strict=True):
        package, _, service = name.rpartition(".")
        defining = files(answer)[0]
        assert defining.package == package
        assert service in [s.name for s in defining.service]


async def test_the_v1_service_is_described_in_its_own_package(router: RouterHandle) -> None:
    symbol = Request(file_containing_symbol="grpc.reflection.v1.ServerReflection")
    [answer] = await reflect(router.channel, "v1", symbol)
    [v1] = files(answer)
    [method] = v1.service[0].method
    assert (v1.name, method.name) == ("grpc/reflection/v1/reflection.proto", "ServerReflectionInfo")
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
    message_types = [
        field.type_name for message in v1.message_type for field in message.field if field.type_name
    ]
    assert message_types and all(t.startswith(".grpc.reflection.v1.") for t in message_types)


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
@pytest.mark.parametrize(
    "method",
    [
        "switchboard.v1.RouterService.Chat",
        "switchboard.v1.RouterService.Realtime",
        "switchboard.v1.AdminService.GetServerInfo",
        "grpc.health.v1.Health.Watch",
    ],
)
async def test_a_method_is_a_symbol_as_the_reflection_proto_names_them(
    router: RouterHandle, version: str, method: str
) -> None:
    """`<package>.<service>.<method>` is a symbol to reflection's `file_containing_symbol`
    (its proto says so; grpc-go and grpc-java answer it): `grpcurl describe` of a method asks
    that. grpcio-reflection's descriptor pool finds no method, and answered NOT_FOUND."""
    [answer] = await reflect(router.channel, version, Request(file_containing_symbol=method))
    defining = files(answer)[0]
    service, _, name = method.rpartition(".")
    [described] = [s for s in defining.service if f"{defining.package}.{s.name}" == service]
    assert name in [m.name for m in described.method]


@pytest.mark.parametrize(
    "symbol",
    [
        "switchboard.v1.RouterService.NoSuchMethod",
        "switchboard.v1.ChatParams.NoSuchField",
        "switchboard.v1.NoSuchService.Chat",
        "switchboard.v1.RouterService.Chat.Deeper",
    ],
)
async def test_a_symbol_that_is_none_is_still_not_found(router: RouterHandle, symbol: str) -> None:
    [answer] = await reflect(router.channel, "v1", Request(file_containing_symbol=symbol))
    assert answer.WhichOneof("message_response") == "error_response"
    assert answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
