"""An upload's completion cut off from Redis once Redis wrote its end (its reply lost: the
call's 503). Its file stands, completed: charged against `files.client_bytes` once Redis
answers the cut-off replica again, whether or not the client ever asks again (it was kept for
`files.ttl_s` uncharged); a retry then charges nothing more. Deleted by the client before
anything charged it, it is charged by nobody: not by the retry that answers the upload
completed, nor by the replay."""

from __future__ import annotations

import openai
import pytest

from router_service.state import ResilientStateStore
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.replicas.harness import refused_for_the_outage, sdks_on
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_batch_outage import Configs, configs
from tests.replicas.test_uploads import end_reply_lost, made, on_one_clock

__all__ = ["configs"]  # the fixture, used here

_FILES = {"client_bytes": 5000}


async def _reply_lost(
    redis_proxy: RedisProxy, one: RouterHandle, sdk: openai.AsyncOpenAI
) -> tuple[str, str]:
    """An upload of 1500 bytes completed through `one`, Redis's reply to its end lost: its
    ids (the upload's, its part's). `one` is left cut off from Redis."""
    upload_id = await made(sdk, 1500)
    part = await sdk.uploads.parts.create(upload_id, data=b"x" * 1500)
    store = one.runtime.store
    store.put_document = end_reply_lost(store, redis_proxy)  # type: ignore[method-assign,assignment]
    try:
        await refused_for_the_outage(lambda: sdk.uploads.complete(upload_id, part_ids=[part.id]))
    finally:
        del store.put_document
    return upload_id, part.id


async def _back(redis_proxy: RedisProxy, one: RouterHandle, sdk: openai.AsyncOpenAI) -> None:
    await redis_proxy.restore()
    one.runtime.store.retry_shared()
    await sdk.files.list()  # its replica back on Redis (what it queued replayed)


async def test_a_completion_whose_reply_was_lost_charges_its_file_unretried(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, one, two, _clock = await on_one_clock(configs, start_router, _FILES)
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id, part_id = await _reply_lost(redis_proxy, one, first)
        await _back(redis_proxy, one, first)
        # Never retried: its 1500 bytes and its entry's 512 charged, 4400 more past 5000.
        with pytest.raises(openai.RateLimitError):
            await second.files.create(file=("a.bin", b"y" * 4400), purpose="user_data")
        done = await second.uploads.complete(upload_id, part_ids=[part_id])  # late, once
        assert done.status == "completed" and done.file is not None
        await second.files.create(file=("a.bin", b"y" * 2400), purpose="user_data")  # 4924


async def test_a_completion_retried_after_its_file_was_deleted_charges_nothing(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, one, two, _clock = await on_one_clock(configs, start_router, _FILES)
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id, part_id = await _reply_lost(redis_proxy, one, first)
        (file_id,) = [f.id async for f in second.files.list()]  # completed on Redis
        await second.files.delete(file_id)
        done = await second.uploads.complete(upload_id, part_ids=[part_id])  # the SDK's retry
        assert done.status == "completed" and done.file is not None and done.file.id == file_id
        await _back(redis_proxy, one, first)
        for sdk in (first, second):  # not made again
            assert [f.id async for f in sdk.files.list()] == []
            with pytest.raises(openai.NotFoundError):
                await sdk.files.retrieve(file_id)
        # Charged by nobody: 4400 and its entry's 512 fit the 5000.
        await second.files.create(file=("a.bin", b"y" * 4400), purpose="user_data")


async def test_a_charge_replayed_in_a_later_period_counts_in_the_period_it_was_kept_in(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The file was kept (its completion answered by Redis) in one period of `files.ttl_s`; Redis
    answers its replica again in the next: its replayed charge is the ended period's, which is no
    longer read (it took 2012 of the new period's 5000: a new client's quota, used by nobody)."""
    files = {**_FILES, "ttl_s": 3600}
    redis_proxy, one, two, clock = await on_one_clock(configs, start_router, files)
    async with sdks_on(start_edge, one, two) as (first, second):
        await _reply_lost(redis_proxy, one, first)
        clock.advance(3600 - clock.now() % 3600 + 1)  # the next period
        await redis_proxy.restore()
        store = one.runtime.store
        assert isinstance(store, ResilientStateStore)
        store.retry_shared()
        await store.get_documents(["probe"])  # back on Redis, what it queued replayed
        assert not store.degraded
        await second.files.create(file=("a.bin", b"y" * 4400), purpose="user_data")  # 4912


async def test_a_completion_retried_in_a_later_period_charges_the_period_it_was_kept_in(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Its reply lost, the completion is retried (on the other replica) in the next period of
    `files.ttl_s`: the retry's charge, the first, is the period the file was kept in, no longer
    read, as the replay's is. It took 2012 of the new period's 5000 from nobody's uploads."""
    files = {**_FILES, "ttl_s": 3600}
    redis_proxy, one, two, clock = await on_one_clock(configs, start_router, files)
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id, part_id = await _reply_lost(redis_proxy, one, first)
        clock.advance(3600 - clock.now() % 3600 + 1)  # the next period
        done = await second.uploads.complete(upload_id, part_ids=[part_id])  # the SDK's retry
        assert done.status == "completed" and done.file is not None
        await second.files.create(file=("a.bin", b"y" * 4400), purpose="user_data")  # 4912
