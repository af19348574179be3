"""Embeddings whose vectors float32 cannot hold, or whose base64 is none, over a real gRPC
channel and the fake upstream: what a caller of either encoding is given, hit or miss, and
that a malformed answer is the upstream's failure, never kept."""

from __future__ import annotations

import math

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.router_service.cache.test_response_cache import (
    HIT,
    MISS,
    cached_config,
    upstream_calls,
    vectors,
)

BEYOND_FLOAT32 = [1e39, -1e39, 0.25]  # an upstream's float32 infinities, written as numbers


def embed_request(encoding: str) -> pb.EmbedRequest:
    params = embeddings_pb2.EmbeddingParams(model="embedder", text="a", encoding_format=encoding)
    return pb.EmbedRequest(params=params)


@pytest.mark.parametrize("formats", [("float", "base64"), ("base64", "float")])
async def test_values_beyond_float32_are_packed_as_its_infinities_hit_or_miss(
    fake: FakeUpstream, start_router: StartRouter, formats: tuple[str, str]
) -> None:
    """As a float32 cast (numpy's, OpenAI's encoder) has them: ±inf. `struct.pack` refused them
    and a base64 caller got INTERNAL, on the upstream's answer and on its cached copy alike."""
    fake.state.set_scenario(Scenario(embedding=BEYOND_FLOAT32))
    router = await start_router(cached_config(fake))

    answers = [await router.stub.Embed(embed_request(asked)) for asked in formats]

    assert [a.route.cache for a in answers] == [MISS, HIT]
    given = {asked: answer.result.data[0] for asked, answer in zip(formats, answers, strict=True)}
    infinities = [math.inf, -math.inf, 0.25]
    assert vectors(given["base64"]) == infinities
    # Floats as the upstream sent them; a hit of an answer kept packed gives float32's numbers.
    kept_as_sent = formats[0] == "float"
    assert list(given["float"].values) == (BEYOND_FLOAT32 if kept_as_sent else infinities)


@pytest.mark.parametrize("packed", ["AAAAAAA=", "AAAAA"], ids=["5-bytes", "padding"])
async def test_an_upstreams_malformed_base64_is_its_failure_and_never_kept(
    fake: FakeUpstream, start_router: StartRouter, packed: str
) -> None:
    """Base64 that is no float32 vector (its bytes not a multiple of 4, bad padding) was kept
    as it came: every float caller's hit was then INTERNAL until the entry expired."""
    fake.state.set_scenario(Scenario(embedding=packed))
    clock = ManualClock(1_000_000.0)
    config = cached_config(fake, ttl_s=3600) | {"cooldowns": {"transient_s": 15}}
    router = await start_router(config, clock=clock)

    for asked in ("base64", "float"):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await router.stub.Embed(embed_request(asked))
        details = details_from_rpc_error(failed.value)
        assert (details.reason, failed.value.code()) == (
            "UPSTREAM_ERROR",
            grpc.StatusCode.UNAVAILABLE,
        )
        assert "base64" in details.message and "Traceback" not in details.message
        clock.advance(16)  # past the deployment's cooldown
    assert upstream_calls(fake) == 2  # the second was asked of the upstream again: nothing kept
