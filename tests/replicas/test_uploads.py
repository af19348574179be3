"""An upload's parts live on the shared Redis: a part sent through one replica is completed
through another, the file then served by both; an upload cancelled or expired on one is so on
the other. An upload is the shared store's or nothing, as a file is: during an outage its calls
are a 503 `state_unavailable`, not a 404 nor a part kept where only one replica reads it."""

from __future__ import annotations

import time

import openai
import pytest

from router_service.clock import ManualClock
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.replicas.harness import Replicas, refused_for_the_outage, sdks_on
from tests.replicas.test_batch_outage import Configs, configs

__all__ = ["configs"]  # the fixture, used here


async def made(sdk: openai.AsyncOpenAI, size: int) -> str:
    upload = await sdk.uploads.create(
        bytes=size, filename="in.txt", mime_type="text/plain", purpose="user_data"
    )
    return upload.id


async def test_a_part_sent_through_one_replica_is_completed_through_another(
    replicas: Replicas,
) -> None:
    _, _, first, second = replicas
    upload_id = await made(first, 6)
    head = await first.uploads.parts.create(upload_id, data=b"abc")
    tail = await second.uploads.parts.create(upload_id, data=b"def")
    done = await second.uploads.complete(upload_id, part_ids=[head.id, tail.id])
    assert done.status == "completed" and done.file is not None
    assert (await first.files.content(done.file.id)).content == b"abcdef"
    assert [f.id async for f in first.files.list()] == [done.file.id]
    with pytest.raises(openai.BadRequestError) as again:  # completed, on every replica
        await first.uploads.parts.create(upload_id, data=b"g")
    assert again.value.code == "upload_completed"


async def test_an_upload_cancelled_or_expired_on_one_replica_is_so_on_the_other(
    replicas: Replicas,
) -> None:
    one, _, first, second = replicas
    cancelled = await made(first, 3)
    await first.uploads.parts.create(cancelled, data=b"abc")
    assert (await second.uploads.cancel(cancelled)).status == "cancelled"
    with pytest.raises(openai.BadRequestError) as refused:
        await first.uploads.parts.create(cancelled, data=b"abc")
    assert refused.value.code == "upload_cancelled"
    expiring = await made(second, 3)
    part = await second.uploads.parts.create(expiring, data=b"abc")
    clock = one.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(one.runtime.config.files.upload_ttl_s + 1)
    with pytest.raises(openai.BadRequestError) as expired:
        await first.uploads.complete(expiring, part_ids=[part.id])
    assert expired.value.code == "upload_expired"


async def test_an_upload_during_an_outage_is_refused_not_kept_where_nobody_reads_it(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id = await made(second, 3)
        await redis_proxy.cut()
        await refused_for_the_outage(
            lambda: first.uploads.create(
                bytes=3, filename="a.txt", mime_type="text/plain", purpose="user_data"
            ),
            lambda: first.uploads.parts.create(upload_id, data=b"abc"),
            lambda: first.uploads.cancel(upload_id),
        )
        await redis_proxy.restore()
        one.runtime.store.retry_shared()
        part = await first.uploads.parts.create(upload_id, data=b"abc")
        done = await second.uploads.complete(upload_id, part_ids=[part.id])
        assert done.file is not None
        assert (await first.files.content(done.file.id)).content == b"abc"
