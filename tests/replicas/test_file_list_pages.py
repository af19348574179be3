"""A page of a client's files listed through one replica, kept through another on Redis: it
reads the objects of that page (and one more, for `has_more`), not every file the client
keeps (`tests/router_service/server/test_file_list_pages.py`: the same in memory)."""

from __future__ import annotations

from collections.abc import Sequence

from clients.switchboard.v1 import batches_pb2 as bpb
from tests.conftest import StartRouter
from tests.replicas.test_batch_outage import Configs, configs
from tests.replicas.test_uploads import on_one_clock

__all__ = ["configs"]  # the fixture, used here


async def test_a_page_of_files_on_redis_reads_that_page_not_every_file(
    configs: Configs, start_router: StartRouter
) -> None:
    _redis_proxy, one, two, _clock = await on_one_clock(configs, start_router)
    ids = []
    for n in range(12):
        upload = bpb.UploadFileRequest(filename=f"{n}.txt", purpose="user_data", content=b"x")
        ids.append((await one.stub.UploadFile(upload, timeout=10)).file.id)
    store, read = two.runtime.store, two.runtime.store.get_documents
    asked: list[str] = []

    async def counted(names: Sequence[str]) -> list[bytes | None]:
        asked.extend(name for name in names if name.startswith("file:"))
        return await read(names)

    store.get_documents = counted  # type: ignore[method-assign]
    try:
        page = await two.stub.ListFiles(bpb.ListFilesRequest(limit=2), timeout=10)
    finally:
        del store.get_documents
    assert [f.id for f in page.files] == [ids[11], ids[10]] and page.has_more
    assert len(asked) <= 3  # the page and one more (all 12 before)
    after = bpb.ListFilesRequest(limit=20, order="asc", after=ids[9])
    page = await two.stub.ListFiles(after, timeout=10)
    assert [f.id for f in page.files] == ids[10:] and not page.has_more
