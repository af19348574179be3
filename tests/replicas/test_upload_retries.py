"""An upload's completion refused for an outage (its 503) and retried through another replica:
the file the retry kept stays, whatever the first replica undoes once Redis answers it again.
The file's id is the upload's (`upload_file_id`): both completions write the same names."""

from __future__ import annotations

import openai
import pytest

from router_service.batches._upload_names import upload_file_id
from router_service.state import PutResult
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.replicas.harness import refused_for_the_outage, sdks_on
from tests.replicas.test_batch_outage import Configs, configs
from tests.replicas.test_uploads import made, on_one_clock

__all__ = ["configs"]  # the fixture, used here


@pytest.mark.parametrize("cut_at", ["file:", "file-index:"])
async def test_a_completion_retried_elsewhere_keeps_its_file_once_the_first_replica_is_back(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge, cut_at: str
) -> None:
    """The first completion cut off from Redis as it writes its file's object (its content
    kept there), or as it makes its client's index of files (its first file) with its id."""
    redis_proxy, one, two, _clock = await on_one_clock(configs, start_router)
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id = await made(first, 3)
        part = await first.uploads.parts.create(upload_id, data=b"abc")
        store = one.runtime.store
        put = store.put_document

        async def cut_at_the_put(name: str, *args: object, **kwargs: object) -> PutResult:
            if name.startswith(cut_at):
                await redis_proxy.cut()
            return await put(name, *args, **kwargs)  # type: ignore[arg-type]

        store.put_document = cut_at_the_put  # type: ignore[method-assign]
        try:
            await refused_for_the_outage(
                lambda: first.uploads.complete(upload_id, part_ids=[part.id])
            )
        finally:
            del store.put_document
        # The SDK's retry, through the other replica: completed, its file kept.
        done = await second.uploads.complete(upload_id, part_ids=[part.id])
        assert done.status == "completed" and done.file is not None
        await redis_proxy.restore()
        store.retry_shared()
        await first.files.list()  # its replica back on Redis (what it queued replayed)
        for sdk in (first, second):
            assert (await sdk.files.content(done.file.id)).content == b"abc"
            assert [f.id async for f in sdk.files.list()] == [done.file.id]
        assert (await second.uploads.complete(upload_id, part_ids=[part.id])).file == done.file


async def test_a_cancel_after_a_completion_cut_off_as_it_kept_its_file_leaves_none(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, one, two, _clock = await on_one_clock(configs, start_router)
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id = await made(first, 3)
        part = await first.uploads.parts.create(upload_id, data=b"abc")
        store = one.runtime.store
        put = store.put_document

        async def cut_after_the_object(name: str, *args: object, **kwargs: object) -> PutResult:
            kept = await put(name, *args, **kwargs)  # type: ignore[arg-type]
            if name.startswith("file:"):  # its object kept on Redis, its end not yet
                await redis_proxy.cut()
            return kept

        store.put_document = cut_after_the_object  # type: ignore[method-assign]
        try:
            await refused_for_the_outage(
                lambda: first.uploads.complete(upload_id, part_ids=[part.id])
            )
        finally:
            del store.put_document
        assert (await second.uploads.cancel(upload_id)).status == "cancelled"
        await redis_proxy.restore()
        store.retry_shared()
        await first.files.list()  # its replica back on Redis (what it queued replayed)
        for sdk in (first, second):  # the file the cut-off completion kept is nobody's
            assert [f.id async for f in sdk.files.list()] == []
            with pytest.raises(openai.NotFoundError):
                await sdk.files.retrieve(upload_file_id(upload_id))
