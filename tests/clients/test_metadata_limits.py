"""gRPC's metadata limit without its random refusals: a call's (or an answer's) metadata under
16 KiB always passes, over it always fails, over the router's port as in-process
(`clients.MAX_METADATA_BYTES`: the router's and the clients' soft limit is their hard one)."""

from __future__ import annotations

import grpc
import pytest
from grpc import StatusCode as Code

from clients import ErrorDetails, LocalChannel, RouterClient, RouterError, to_grpc_status
from clients.switchboard.v1 import router_service_pb2
from router_service.fake_upstream import FakeUpstream
from router_service.server._in_process import InProcessHandlers
from tests.clients.test_error_contract import AbortingRouter, aborting
from tests.conftest import RouterHandle
from tests.router_service.auth.helpers import chat

__all__ = ["aborting"]  # the fixture

_ROUTER = "switchboard.v1.RouterService"


def _chat_handler(servicer: AbortingRouter) -> grpc.RpcMethodHandler:
    """`servicer`'s Chat as grpc serves it."""
    return grpc.unary_unary_rpc_method_handler(
        servicer.Chat,
        request_deserializer=router_service_pb2.ChatRequest.FromString,
        response_serializer=router_service_pb2.ChatResponse.SerializeToString,
    )


def _not_found_with_trailers(servicer: AbortingRouter, size: int) -> None:
    """`servicer` answers NOT_FOUND (MODEL_NOT_FOUND) with `size` bytes more of trailers."""
    status = to_grpc_status(ErrorDetails(Code.NOT_FOUND, "no such model", "MODEL_NOT_FOUND"))
    large = (("x-large", "a" * size),)
    servicer.status = status._replace(trailing_metadata=(*status.trailing_metadata, *large))


async def test_metadata_between_grpcs_soft_and_hard_limits_is_served_as_over_the_port(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # Past grpc's 8 KiB soft limit the router's port refused calls at random (RESOURCE_EXHAUSTED
    # "exceeds soft limit", most of them near 16 KiB) while in-process served them all: the
    # router's soft limit is its hard one, so both serve every call under 16 KiB.
    large = [(f"x-part-{i}", "a" * 1_000) for i in range(14)]  # ~15 KiB with grpc's own
    for channel in (None, LocalChannel(router.server.in_process)):
        async with RouterClient(router.server.address, channel=channel) as client:
            for _ in range(8):
                await client.chat(chat(), timeout=5, metadata=large)
    assert len(fake.state.records) == 16


async def test_an_error_with_trailers_between_grpcs_soft_and_hard_limits_is_read_whole(
    aborting: tuple[AbortingRouter, str],
) -> None:
    # Past grpc's 8 KiB soft limit on what the client receives, the client's channel failed
    # such an answer at random (RESOURCE_EXHAUSTED "Stream removed (... exceeds soft limit"):
    # the client's soft limit is its hard one (16 KiB), as the router's.
    servicer, target = aborting
    _not_found_with_trailers(servicer, 12_000)
    async with RouterClient(target) as client:
        for _ in range(8):
            with pytest.raises(RouterError) as info:
                await client.chat(router_service_pb2.ChatRequest())
            assert (info.value.grpc_code, info.value.reason) == (Code.NOT_FOUND, "MODEL_NOT_FOUND")


async def test_an_answer_grpc_refused_is_not_read_as_the_status_its_trailers_carry(
    aborting: tuple[AbortingRouter, str],
) -> None:
    # A channel at grpc's 8 KiB soft limit (a caller's own options) refuses the answer
    # (RESOURCE_EXHAUSTED "Stream removed") yet hands its trailers over: their rich status
    # (NOT_FOUND, MODEL_NOT_FOUND) was read as the refusal's, a RESOURCE_EXHAUSTED named
    # MODEL_NOT_FOUND. A rich status of another code than the call's is not the call's.
    servicer, target = aborting
    _not_found_with_trailers(servicer, 15_000)
    options = [("grpc.max_metadata_size", 8 * 1024)]
    endings = set()
    async with RouterClient(target, options=options) as client:
        for _ in range(8):
            with pytest.raises(RouterError) as info:
                await client.chat(router_service_pb2.ChatRequest())
            endings.add((info.value.grpc_code, info.value.reason, info.value.details.bare))
    assert endings <= {
        (Code.NOT_FOUND, "MODEL_NOT_FOUND", False),
        (Code.RESOURCE_EXHAUSTED, "METADATA_TOO_LARGE", True),
    }


@pytest.mark.parametrize("option", ["grpc.max_metadata_size", "grpc.absolute_max_metadata_size"])
async def test_a_callers_own_metadata_limit_is_its_soft_and_hard_one(
    aborting: tuple[AbortingRouter, str], option: str
) -> None:
    # A caller who raised one of grpc's two limits in `options=` (32 KiB) was held to our other
    # one (16 KiB): grpc derives the hard limit from a soft one given alone (and back), ours,
    # set beside it, refused every answer past 16 KiB. The caller's limit is now both.
    servicer, target = aborting
    _not_found_with_trailers(servicer, 20_000)
    async with RouterClient(target, options=[(option, 32 * 1024)]) as client:
        for _ in range(8):
            with pytest.raises(RouterError) as info:
                await client.chat(router_service_pb2.ChatRequest())
            assert (info.value.grpc_code, info.value.reason) == (Code.NOT_FOUND, "MODEL_NOT_FOUND")


_FOUND_NOT = (Code.NOT_FOUND, "MODEL_NOT_FOUND")
_TOO_LARGE = (Code.RESOURCE_EXHAUSTED, "METADATA_TOO_LARGE")


# 16 100 bytes more: under 16 KiB as a LocalChannel counted them, over it as grpc counts the
# answer's trailers (with its grpc-status and grpc-message, a `-bin` value as sent, unencoded).
@pytest.mark.parametrize(
    ("size", "ending"),
    [(12_000, _FOUND_NOT), (15_900, _FOUND_NOT), (16_100, _TOO_LARGE), (20_000, _TOO_LARGE)],
)
async def test_an_answers_trailers_end_in_process_as_over_the_port(
    aborting: tuple[AbortingRouter, str], size: int, ending: tuple[Code, str]
) -> None:
    # A LocalChannel handed its caller trailers of any size (a router's answer of 20 KB of
    # them): it refuses those over the caller's metadata limit (`MAX_METADATA_BYTES`) as
    # grpc does, and reads those under it whole.
    servicer, target = aborting
    _not_found_with_trailers(servicer, size)
    server = grpc.aio.server()
    handlers = InProcessHandlers(server, [], 4 * 1024 * 1024)
    handlers.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_ROUTER, {"Chat": _chat_handler(servicer)}),)
    )
    handlers.start()
    endings = []
    for channel in (None, LocalChannel(handlers)):
        async with RouterClient(target, channel=channel) as client:
            with pytest.raises(RouterError) as info:
                await client.chat(router_service_pb2.ChatRequest())
            endings.append((info.value.grpc_code, info.value.reason))
    assert endings == [ending, ending]
