"""The default bound on a successful answer (`http.max_response_bytes`) lets through the largest
answer an upstream gives a valid request: OpenAI's embeddings of its most inputs (2,048) at
text-embedding-3-large's 3,072 dimensions, as floats in JSON (what a caller asking for no
`encoding_format` gets), which the router's own answer limit (`LARGEST_ANSWER_BYTES`) was sized
for. Through a real gRPC channel, from a loopback upstream writing that JSON."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import grpc
import orjson
import pytest

from clients._limits import LARGEST_ANSWER_BYTES
from clients.switchboard.v1 import embeddings_pb2, router_service_pb2_grpc
from clients.switchboard.v1 import router_service_pb2 as pb
from tests.conftest import StartRouter
from tests.router_service.providers.test_error_body_bound import config
from tests.router_service.providers.test_success_body_bound import Answers

pytestmark = pytest.mark.timeout(240)

_INPUTS, _DIMENSIONS = 2048, 3072


def _vector(numbers: random.Random) -> list[float]:
    """Values as OpenAI writes them: float32's, ten significant digits or so (-0.0069292835)."""
    return [round(numbers.uniform(-0.1, 0.1), 10) for _ in range(_DIMENSIONS)]


def _answer() -> bytes:
    numbers = random.Random(7)
    vector = _vector(numbers)  # one, repeated: the size is what counts, not the values
    data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(_INPUTS)]
    usage = {"prompt_tokens": _INPUTS, "total_tokens": _INPUTS}
    return orjson.dumps({"object": "list", "data": data, "model": "m", "usage": usage})


@pytest.fixture
async def upstream() -> AsyncIterator[Answers]:
    answering = Answers("identity", [_answer()], b"application/json")
    answering.go.set()
    yield answering
    await answering.stop()


@pytest.mark.parametrize("transport", ["lean", "httpx"])
async def test_the_largest_embeddings_answer_passes_the_default_bound(
    start_router: StartRouter, upstream: Answers, transport: str
) -> None:
    body = upstream.parts[0]
    assert len(body) > 64 << 20  # the default bound this was refused by
    router = await start_router(config(await upstream.start(), transport, "big"))
    limit = ("grpc.max_receive_message_length", LARGEST_ANSWER_BYTES)
    async with grpc.aio.insecure_channel(router.server.address, options=[limit]) as channel:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        params = embeddings_pb2.EmbeddingParams(model="chain")
        params.texts.values.extend(["hello"] * _INPUTS)
        answer = await stub.Embed(pb.EmbedRequest(params=params))
    assert len(answer.result.data) == _INPUTS
    assert [len(one.values) for one in answer.result.data] == [_DIMENSIONS] * _INPUTS
    assert await router.leases_held() == 0
