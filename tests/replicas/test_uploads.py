"""An upload's parts live on the shared Redis: a part sent through one replica is completed
through another, the file then served by both; an upload cancelled or expired on one is so on
the other. An upload is the shared store's or nothing, as a file is: during an outage its calls
are a 503 `state_unavailable`, not a 404 nor a part kept where only one replica reads it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.state import PutResult
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_uploads_races import gated
from tests.replicas.harness import (
    Replicas,
    refused_for_the_outage,
    replica_config,
    sdks_on,
    two_replicas,
)
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_batch_outage import Configs, configs

__all__ = ["configs"]  # the fixture, used here


async def on_one_clock(
    configs: Configs, start_router: StartRouter, files: dict[str, int] | None = None
) -> tuple[RedisProxy, RouterHandle, RouterHandle, ManualClock]:
    """Two replicas on one manual clock: `one` reaches Redis through the proxy (cut it to cut
    `one` off), `two` straight; `files` the `files` section of both."""
    redis_proxy, through, direct = configs
    if files is not None:
        through["files"] = direct["files"] = files
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    return redis_proxy, one, await start_router(direct, clock=clock), clock


async def made(sdk: openai.AsyncOpenAI, size: int) -> str:
    upload = await sdk.uploads.create(
        bytes=size, filename="in.txt", mime_type="text/plain", purpose="user_data"
    )
    return upload.id


def end_reply_lost(store: Any, redis_proxy: RedisProxy) -> Callable[..., Awaitable[PutResult]]:
    """`store`'s put_document, but an upload's end: Redis writes it, its reply never comes back
    (held, then the connection cut)."""
    put = store.put_document

    async def reply_lost(name: str, *args: object, **kwargs: object) -> PutResult:
        if not name.startswith("upload-end:"):
            return await put(name, *args, **kwargs)  # type: ignore[no-any-return]
        redis_proxy.hold_replies()
        putting = asyncio.ensure_future(put(name, *args, **kwargs))
        await redis_proxy.held.wait()
        await redis_proxy.cut()
        return await putting  # type: ignore[no-any-return]

    return reply_lost


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
    redis_proxy, one, two, _clock = await on_one_clock(configs, start_router)
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


async def test_a_completion_and_a_cancel_racing_give_the_parts_back_once(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    redis_url: str,
    redis_prefix: str,
) -> None:
    config = replica_config(fake.base_url, redis_url, redis_prefix, files={"client_bytes": 5000})
    one, two = await two_replicas(start_router, config)
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id = await made(first, 1500)
        part = await first.uploads.parts.create(upload_id, data=b"x" * 1500)
        # Each reads the parts' count before either gave it back (Redis answers both reads
        # first): a count given back twice was 1500 bytes of room no file had paid for.
        with gated([one.runtime.store, two.runtime.store], 2):
            completed, cancelled = await asyncio.gather(
                first.uploads.complete(upload_id, part_ids=[part.id]),
                second.uploads.cancel(upload_id),
                return_exceptions=True,
            )
        assert isinstance(completed, openai.BadRequestError), completed
        assert not isinstance(cancelled, BaseException) and cancelled.status == "cancelled"
        with pytest.raises(openai.RateLimitError):  # 4500 and its entry's 512: past 5000
            await second.files.create(file=("a.bin", b"y" * 4500), purpose="user_data")
        await second.files.create(file=("a.bin", b"y" * 4400), purpose="user_data")


async def completion_cut_off(
    redis_proxy: RedisProxy, one: RouterHandle, sdk: openai.AsyncOpenAI
) -> tuple[str, str]:
    """An upload of 1500 bytes in one part, its completion through `one` (on Redis through
    `redis_proxy`) cut off from Redis as it writes its end, its file kept: a 503. Its ids."""
    upload_id = await made(sdk, 1500)
    part = await sdk.uploads.parts.create(upload_id, data=b"x" * 1500)
    store = one.runtime.store
    put = store.put_document

    async def cut_at_the_end(name: str, *args: object, **kwargs: object) -> PutResult:
        if name.startswith("upload-end:"):  # its file kept, its end not yet written
            await redis_proxy.cut()
        return await put(name, *args, **kwargs)  # type: ignore[arg-type]

    store.put_document = cut_at_the_end  # type: ignore[method-assign]
    try:
        await refused_for_the_outage(lambda: sdk.uploads.complete(upload_id, part_ids=[part.id]))
    finally:
        del store.put_document
    await redis_proxy.restore()
    store.retry_shared()
    await sdk.files.list()  # its replica back on Redis (what it queued written)
    return upload_id, part.id


async def test_a_completion_cut_off_from_redis_as_it_ends_leaves_its_parts_counted(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, one, two, _clock = await on_one_clock(
        configs, start_router, {"client_bytes": 5000}
    )
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id, part_id = await completion_cut_off(redis_proxy, one, first)
        # Still pending, its 1500 bytes of parts count: 4400 and its entry's 512 are past 5000
        # (its count given back for good was 1500 bytes no file nor part paid for).
        with pytest.raises(openai.RateLimitError):
            await second.files.create(file=("a.bin", b"y" * 4400), purpose="user_data")
        done = await second.uploads.complete(upload_id, part_ids=[part_id])
        assert done.status == "completed" and done.file is not None
        with pytest.raises(openai.RateLimitError):  # the file charged: 2012 and 3100 past 5000
            await second.files.create(file=("a.bin", b"y" * 2600), purpose="user_data")
        await second.files.create(file=("a.bin", b"y" * 2400), purpose="user_data")


async def test_an_upload_cancelled_after_a_completion_cut_off_keeps_no_file(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, one, two, _clock = await on_one_clock(configs, start_router)
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id, _ = await completion_cut_off(redis_proxy, one, first)
        assert (await second.uploads.cancel(upload_id)).status == "cancelled"
        # The file the cut-off completion kept (charged nothing: its end never written) is
        # not the client's: no listing shows it, for its 30 days, uncounted.
        assert [f.id async for f in second.files.list()] == []


async def test_a_completion_whose_reply_from_redis_was_lost_charges_its_file_once_retried(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, one, two, clock = await on_one_clock(configs, start_router, {"client_bytes": 5000})
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id = await made(first, 1500)
        part = await first.uploads.parts.create(upload_id, data=b"x" * 1500)
        store = one.runtime.store
        store.put_document = end_reply_lost(store, redis_proxy)  # type: ignore[method-assign,assignment]
        try:
            await refused_for_the_outage(
                lambda: first.uploads.complete(upload_id, part_ids=[part.id])
            )
        finally:
            del store.put_document
        await redis_proxy.restore()
        store.retry_shared()
        await first.files.list()  # its replica back on Redis
        done = await second.uploads.complete(upload_id, part_ids=[part.id])  # the SDK's retry
        assert done.status == "completed" and done.file is not None
        clock.advance(2 * 86400)  # the upload (and its parts' count) expired; its file lives on
        assert (await second.files.retrieve(done.file.id)).bytes == 1500
        with pytest.raises(openai.RateLimitError):  # the file charged: 2012 and 3512 past 5000
            await second.files.create(file=("a.bin", b"y" * 3000), purpose="user_data")


@pytest.mark.parametrize("end", ["complete", "cancel"])
async def test_an_upload_ended_as_redis_s_reply_was_lost_frees_its_slot_there(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge, end: str
) -> None:
    """Redis wrote an upload's end (a completion's, a cancel's) but its reply was lost (the
    call's 503), and the caller never retries: its slot is given back on Redis once it
    answers, not held there for the hour the upload would have lived."""
    redis_proxy, one, two, _clock = await on_one_clock(
        configs, start_router, {"max_pending_uploads": 1}
    )
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id = await made(first, 3)
        part = await first.uploads.parts.create(upload_id, data=b"abc")
        store = one.runtime.store
        store.put_document = end_reply_lost(store, redis_proxy)  # type: ignore[method-assign,assignment]
        try:
            if end == "complete":
                await refused_for_the_outage(
                    lambda: first.uploads.complete(upload_id, part_ids=[part.id])
                )
            else:
                await refused_for_the_outage(lambda: first.uploads.cancel(upload_id))
        finally:
            del store.put_document
        await redis_proxy.restore()
        store.retry_shared()
        await first.files.list()  # its replica back on Redis (what it queued written)
        await made(second, 3)  # the ended upload's slot free
        with pytest.raises(openai.RateLimitError):  # the new one's held
            await made(first, 3)


async def test_a_clients_pending_uploads_are_bounded_across_replicas(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    redis_url: str,
    redis_prefix: str,
) -> None:
    files = {"max_pending_uploads": 2}
    config = replica_config(fake.base_url, redis_url, redis_prefix, files=files)
    one, two = await two_replicas(start_router, config)
    async with sdks_on(start_edge, one, two) as (first, second):
        kept = await made(first, 1)
        await made(second, 1)
        for sdk in (first, second):
            with pytest.raises(openai.RateLimitError) as over:
                await made(sdk, 1)
            assert over.value.code == "upload_limit_exceeded"
        await second.uploads.cancel(kept)
        await made(first, 1)


@pytest.mark.parametrize("cut_at", ["create", "cancel"])
async def test_a_pending_uploads_slot_freed_as_redis_is_lost_is_freed_on_redis_too(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge, cut_at: str
) -> None:
    """Redis lost between an upload's slot taken there and given back (a create refused for
    the outage, a cancel whose end was written just before): the slot given back on Redis
    once it answers, not held there for the hour the upload would have lived."""
    redis_proxy, one, two, _clock = await on_one_clock(
        configs, start_router, {"max_pending_uploads": 1}
    )
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id = "" if cut_at == "create" else await made(first, 3)
        store = one.runtime.store
        put = store.put_document

        async def cut_around(name: str, *args: object, **kwargs: object) -> PutResult:
            if cut_at == "create" and name.startswith("upload-parts:"):  # its slot taken
                await redis_proxy.cut()
            kept = await put(name, *args, **kwargs)  # type: ignore[arg-type]
            if name.startswith("upload-end:"):  # its end written, its slot not yet given back
                await redis_proxy.cut()
            return kept

        store.put_document = cut_around  # type: ignore[method-assign]
        try:
            if cut_at == "create":
                await refused_for_the_outage(lambda: made(first, 3))
            else:
                with contextlib.suppress(openai.InternalServerError):  # its file's delete
                    await first.uploads.cancel(upload_id)
        finally:
            del store.put_document
        await redis_proxy.restore()
        store.retry_shared()
        await first.files.list()  # its replica back on Redis (what it queued written)
        if upload_id:  # cancelled, on every replica
            with pytest.raises(openai.BadRequestError) as again:
                await second.uploads.cancel(upload_id)
            assert again.value.code == "upload_cancelled"
        await made(second, 3)  # the client has no upload pending
        with pytest.raises(openai.RateLimitError):
            await made(first, 3)


@pytest.mark.parametrize("cut_at", ["end", "count"])
async def test_a_cancel_cut_off_from_redis_once_its_end_is_written_gives_its_parts_back_there(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge, cut_at: str
) -> None:
    """Redis lost just after a cancel wrote the upload's end (its 503), or once its parts were
    deleted there, as it reads what they hold: the bytes its parts held are given back on Redis
    once it answers, not counted there for the upload's hour."""
    redis_proxy, one, two, _clock = await on_one_clock(
        configs, start_router, {"client_bytes": 5000}
    )
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id = await made(first, 1500)
        await first.uploads.parts.create(upload_id, data=b"x" * 1500)
        store = one.runtime.store
        put, read = store.put_document, store.read_buckets

        async def cut_after_the_end(name: str, *args: object, **kwargs: object) -> PutResult:
            kept = await put(name, *args, **kwargs)  # type: ignore[arg-type]
            if cut_at == "end" and name.startswith("upload-end:"):
                await redis_proxy.cut()
            return kept

        async def cut_at_the_count(names: Sequence[str]) -> list[dict[int, dict[str, float]]]:
            if cut_at == "count" and any(n.startswith("upload-bytes:") for n in names):
                await redis_proxy.cut()
            return await read(names)

        store.put_document = cut_after_the_end  # type: ignore[method-assign]
        store.read_buckets = cut_at_the_count  # type: ignore[method-assign]
        try:
            with contextlib.suppress(openai.InternalServerError):
                await first.uploads.cancel(upload_id)
        finally:
            del store.put_document, store.read_buckets
        await redis_proxy.restore()
        store.retry_shared()
        await first.files.list()  # its replica back on Redis (what it queued written)
        # 4400 and its entry's 512 fit in 5000 only with the cancelled parts' 1500 given back.
        await second.files.create(file=("a.bin", b"y" * 4400), purpose="user_data")
