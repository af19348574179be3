"""An upload's completion cut off from Redis as it writes its end (a 503, the upload still
pending): its parts count again, on Redis once it answers the cut-off replica (replayed). However
late that is, the count ends with the upload, as its parts do: an outage of most of the upload's
hour does not hold its bytes against `files.client_bytes` for an hour past its expiry. Replayed
with the time left when it was queued, it was."""

from __future__ import annotations

import openai
import pytest

from router_service.state import PutResult, ResilientStateStore
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.replicas.harness import refused_for_the_outage, sdks_on
from tests.replicas.test_batch_outage import Configs, configs
from tests.replicas.test_uploads import made, on_one_clock

__all__ = ["configs"]  # the fixture, used here


async def test_a_recount_replayed_late_ends_with_its_upload(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, one, two, clock = await on_one_clock(
        configs, start_router, {"client_bytes": 5000, "upload_ttl_s": 3600}
    )
    async with sdks_on(start_edge, one, two) as (first, second):
        upload_id = await made(first, 1500)
        part = await first.uploads.parts.create(upload_id, data=b"x" * 1500)
        store = one.runtime.store
        put = store.put_document

        async def cut_at_the_end(name: str, *args: object, **kwargs: object) -> PutResult:
            if name.startswith("upload-end:"):  # its file kept, its end not yet written
                await redis_proxy.cut()
            return await put(name, *args, **kwargs)  # type: ignore[arg-type]

        store.put_document = cut_at_the_end  # type: ignore[method-assign]
        try:
            await refused_for_the_outage(
                lambda: first.uploads.complete(upload_id, part_ids=[part.id])
            )
        finally:
            del store.put_document
        clock.advance(3000)  # most of the upload's hour cut off
        await redis_proxy.restore()
        assert isinstance(store, ResilientStateStore)
        store.retry_shared()
        await store.get_documents(["probe"])  # back on Redis, its recount replayed
        assert not store.degraded
        # Still pending, its 1500 bytes count: 4400 and its entry's 512 are past 5000.
        with pytest.raises(openai.RateLimitError):
            await second.files.create(file=("a.bin", b"y" * 4400), purpose="user_data")
        clock.advance(601)  # the upload expired: its parts count no more
        await second.files.create(file=("a.bin", b"y" * 4400), purpose="user_data")
