"""A page of a client's files (`GET /v1/files`, ListFiles with `limit`) reads the objects of
that page (and one more, for `has_more`), not every file the client keeps: its index gives
the order, newest first (`order: "asc"` oldest first), `after` where to begin."""

from __future__ import annotations

from collections.abc import Sequence

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter, base_config


class CountsFileReads(MemoryStateStore):
    """Memory state that counts the file objects (`file:` documents) it is asked for."""

    objects_read = 0

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        self.objects_read += sum(name.startswith("file:") for name in names)
        return await super().get_documents(names)


async def test_a_page_of_files_reads_that_page_not_every_file(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    store = CountsFileReads()
    router = await start_router(base_config(fake.base_url), store=store)
    ids = []
    for n in range(12):
        upload = bpb.UploadFileRequest(filename=f"{n}.txt", purpose="user_data", content=b"x")
        ids.append((await router.stub.UploadFile(upload, timeout=10)).file.id)
    store.objects_read = 0
    page = await router.stub.ListFiles(bpb.ListFilesRequest(limit=2), timeout=10)
    assert [f.id for f in page.files] == [ids[11], ids[10]] and page.has_more
    assert store.objects_read <= 3  # the page and one more (all 12 before)
    asked = bpb.ListFilesRequest(limit=3, after=ids[10])
    page = await router.stub.ListFiles(asked, timeout=10)
    assert [f.id for f in page.files] == [ids[9], ids[8], ids[7]] and page.has_more
    asked = bpb.ListFilesRequest(limit=5, order="asc", after=ids[8])
    page = await router.stub.ListFiles(asked, timeout=10)
    assert [f.id for f in page.files] == ids[9:] and not page.has_more
    await router.stub.DeleteFile(bpb.DeleteFileRequest(id=ids[10]), timeout=10)
    page = await router.stub.ListFiles(bpb.ListFilesRequest(limit=2), timeout=10)
    assert [f.id for f in page.files] == [ids[11], ids[9]] and page.has_more


class CountsRoundTrips(CountsFileReads):
    """Memory state that counts its round trips for file objects, too."""

    round_trips = 0

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        self.round_trips += any(name.startswith("file:") for name in names)
        return await super().get_documents(names)


async def test_a_small_page_past_many_files_it_skips_reads_them_in_few_round_trips(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # A page of 1 `batch` file past 40 newer `user_data` ones (or deleted, expired ones): not
    # a round trip to the store for every two of them (20), but chunks growing as it reads.
    store = CountsRoundTrips()
    router = await start_router(base_config(fake.base_url), store=store)
    oldest = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=b"{}\n")
    wanted = (await router.stub.UploadFile(oldest, timeout=10)).file.id
    for n in range(40):
        upload = bpb.UploadFileRequest(filename=f"{n}.txt", purpose="user_data", content=b"x")
        await router.stub.UploadFile(upload, timeout=10)
    store.round_trips = 0
    asked = bpb.ListFilesRequest(limit=1, purpose="batch")
    page = await router.stub.ListFiles(asked, timeout=10)
    assert [f.id for f in page.files] == [wanted] and not page.has_more
    assert store.round_trips <= 6  # 2, 4, 8, 16, 32 ids a round trip: 5 (21 before)
    asked = bpb.ListFilesRequest(limit=1, purpose="user_data")
    page = await router.stub.ListFiles(asked, timeout=10)
    assert len(page.files) == 1 and page.has_more
