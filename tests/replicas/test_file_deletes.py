"""A deleted file stays deleted on every replica: a file of a known id (a batch's output or
error file, an upload's completion) written again by another replica after the delete (a batch's
end written again where it is taken over, a completion retried there) does not come back. Two
replicas: two stores on one Redis namespace (or one memory store two `StoredFiles` share)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.batches import OUTPUT_PURPOSE, StoredFiles, output_file_id
from router_service.batches._errors import StoredFileNotFoundError
from router_service.clock import ManualClock
from router_service.config import FilesConfig, StateConfig
from router_service.state import MemoryStateStore, PutResult, ResilientStateStore, open_store
from tests.replicas.redis_fixtures import redis_state

CLIENT = "app"
NAME = "batch_x_output.jsonl"


class _WritesFirst:
    """A replica's store (a mixin on its class) that lets `first` (the other replica's keep
    and delete) run once, just before this one writes a file's content: the delete lands
    between this writer's look at the file (none there yet) and its write."""

    first: Callable[[], Awaitable[None]] | None = None

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if self.first is not None and name.startswith("file-data:"):
            first, self.first = self.first, None
            await first()
        kept: PutResult = await super().put_document(  # type: ignore[misc]
            name, data, ttl_s, only_new=only_new
        )
        return kept


class SharedWritesFirst(_WritesFirst, ResilientStateStore):
    pass


class MemoryWritesFirst(_WritesFirst, MemoryStateStore):
    pass


Replicas = tuple[StoredFiles, StoredFiles]


@pytest.fixture(params=["memory", "redis"])
async def replicas(request: pytest.FixtureRequest) -> AsyncIterator[Replicas]:
    clock = ManualClock(time.time())
    config = FilesConfig()
    if request.param == "memory":
        store = MemoryWritesFirst(clock)
        yield StoredFiles(store, clock, config), StoredFiles(store, clock, config)
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    state = StateConfig.model_validate(redis_state(url, prefix))
    one, opened = await open_store(state, clock), await open_store(state, clock)
    assert isinstance(opened, ResilientStateStore)
    two = SharedWritesFirst(opened.shared, opened.local, clock=clock, name=opened.name)
    try:
        yield StoredFiles(one, clock, config), StoredFiles(two, clock, config)
    finally:
        await one.aclose()
        await two.aclose()


async def _gone_everywhere(replicas: Replicas, file_id: str) -> None:
    for files in replicas:
        with pytest.raises(StoredFileNotFoundError):
            await files.get(CLIENT, file_id)
        with pytest.raises(StoredFileNotFoundError):
            await files.content(CLIENT, file_id)
        with pytest.raises(StoredFileNotFoundError):  # deleted once: a second delete is a 404
            await files.delete(CLIENT, file_id)
        listed = await files.listed(CLIENT, bpb.ListFilesRequest())
        assert file_id not in [f.id for f in listed.files]


async def test_a_deleted_output_file_written_again_elsewhere_stays_deleted(
    replicas: Replicas,
) -> None:
    one, two = replicas
    file_id = output_file_id("batch_x", "output")
    kept = await one.keep(CLIENT, NAME, OUTPUT_PURPOSE, b"{}\n", file_id=file_id)
    await one.delete(CLIENT, file_id)
    # The batch's end written again where it is taken over: the file it names is the deleted one.
    again = await two.keep(CLIENT, NAME, OUTPUT_PURPOSE, b"{}\n", file_id=file_id)
    assert again.id == file_id and again.created_at == kept.created_at
    await _gone_everywhere(replicas, file_id)


async def test_a_delete_between_a_writers_look_and_its_write_wins(replicas: Replicas) -> None:
    one, two = replicas
    file_id = output_file_id("batch_y", "error")

    async def kept_and_deleted_on_one() -> None:
        await one.keep(CLIENT, NAME, OUTPUT_PURPOSE, b"{}\n", file_id=file_id)
        await one.delete(CLIENT, file_id)

    store = two._store
    assert isinstance(store, _WritesFirst)
    store.first = kept_and_deleted_on_one
    await two.keep(CLIENT, NAME, OUTPUT_PURPOSE, b"{}\n", file_id=file_id)
    await _gone_everywhere(replicas, file_id)


async def test_a_file_of_a_random_id_is_deleted_as_before(replicas: Replicas) -> None:
    one, two = replicas
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=b"{}\n")
    file = await one.upload(CLIENT, upload)
    assert (await two.get(CLIENT, file.id)).id == file.id
    await two.delete(CLIENT, file.id)
    await _gone_everywhere(replicas, file.id)
