"""A batch's end written again where it is taken over (its runner stopped after it kept its
output files, before its final write; or as it kept them, the store lost: the batch is handed
over, not failed `output_not_kept`): the files kept then are the batch's, kept and charged once
(`files.max_files`, `files.client_bytes`), not a second pair."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.batches import OUTPUT_PURPOSE, StoredFiles, output_file_id
from router_service.clock import ManualClock
from router_service.config import FilesConfig
from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import MemoryStateStore, PutResult
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.test_batches_sdk import chat_line, jsonl


class FailsOnce(MemoryStateStore):
    """Memory state whose first document write that `fails` picks raises the store's error, as
    Redis lost (or the replica gone) right there."""

    def __init__(self, clock: ManualClock, fails: Callable[[str, bytes], bool]) -> None:
        super().__init__(clock)
        self._fails = fails
        self.failed = False

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if not self.failed and self._fails(name, data):
            self.failed = True
            raise StoreUnavailableError("Redis is unavailable.")
        return await super().put_document(name, data, ttl_s, only_new=only_new)


def _batch_ended(name: str, data: bytes) -> bool:
    """The batch's final write, after its files were kept."""
    return name.startswith("batch:") and bpb.Batch.FromString(data).status == "completed"


async def taken_over(
    fake: FakeUpstream, router: RouterHandle, content: bytes, caplog: pytest.LogCaptureFixture
) -> bpb.Batch:
    """A batch of `content` (chat lines) on `router`, whose end its store fails once (`FailsOnce`:
    its runner lets it go, `finalizing`, failed not), then taken over there, as another replica
    would once its claim is gone: the batch as it ended."""
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=content)
    kept = await router.stub.UploadFile(upload)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.state.hold()  # the job may not end before the test holds it (a loaded machine's did)
    made = await router.stub.CreateBatch(create)
    jobs, records = router.server.batch_jobs, router.runtime.batches
    (job,) = jobs._jobs.values()
    fake.state.release()
    assert await jobs.settle(10) == 0
    store = router.runtime.store
    assert isinstance(store, FailsOnce) and store.failed
    assert job.task is not None and job.task.exception() is None  # said, not a task's death
    assert "its end was not written: Redis is unavailable." in caplog.text
    stopped = await records.get("", made.batch.id)
    assert stopped.status == "finalizing" and not stopped.errors  # let go: not failed
    assert await jobs.adopt(router.runtime) == 1
    assert await jobs.settle(10) == 0
    return await records.get("", made.batch.id)


async def test_a_batch_ended_again_where_taken_over_keeps_its_output_once(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(1_700_000_000.0)
    store = FailsOnce(clock, _batch_ended)  # its files kept, its end not written
    router = await start_router(base_config(fake.base_url), clock=clock, store=store)
    done = await taken_over(fake, router, jsonl(chat_line("one"), chat_line("two")), caplog)
    assert done.status == "completed" and done.request_counts.completed == 2
    runtime = router.runtime
    files = await runtime.files.listed("", bpb.ListFilesRequest(purpose=OUTPUT_PURPOSE))
    assert [f.id for f in files.files] == [done.output_file_id]
    output = await runtime.files.content("", done.output_file_id)
    assert len(output.content.splitlines()) == 2
    assert fake.state.count(path="/chat/completions") == 2  # no line ran twice


def _error_file(name: str, data: bytes) -> bool:
    """The content of the batch's error file, kept after its output file."""
    return name.startswith("file-data:") and b'"status_code":400' in data


async def test_a_store_outage_as_a_batchs_files_are_kept_hands_it_over_not_failed(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(1_700_000_000.0)
    store = FailsOnce(clock, _error_file)
    router = await start_router(base_config(fake.base_url), clock=clock, store=store)
    refused = Scenario(status=400, error_body={"error": {"message": "bad prompt"}})
    fake.state.set_scenario(refused, text="two")
    content = jsonl(chat_line("one"), chat_line("two", text="two"))
    done = await taken_over(fake, router, content, caplog)
    assert done.status == "completed" and not done.errors
    counts = done.request_counts
    assert (counts.total, counts.completed, counts.failed) == (2, 1, 1)
    runtime = router.runtime
    files = await runtime.files.listed("", bpb.ListFilesRequest(purpose=OUTPUT_PURPOSE))
    assert sorted(f.id for f in files.files) == sorted([done.output_file_id, done.error_file_id])
    for file_id, custom_id in [(done.output_file_id, "one"), (done.error_file_id, "two")]:
        (line,) = (await runtime.files.content("", file_id)).content.splitlines()
        assert orjson.loads(line)["custom_id"] == custom_id
    assert fake.state.count(path="/chat/completions") == 2  # no line ran twice


async def test_a_file_kept_again_by_its_id_takes_one_place_in_the_index() -> None:
    clock = ManualClock(1_700_000_000.0)
    # The file's object not written: its writer stopped after the file took its index place.
    store = FailsOnce(clock, lambda name, data: name.startswith("file:"))
    files = StoredFiles(store, clock, FilesConfig(max_files=2))
    file_id = output_file_id("batch_x", "output")
    with pytest.raises(StoreUnavailableError):
        await files.keep("app", "x_output.jsonl", OUTPUT_PURPOSE, b"{}\n", file_id=file_id)
    again = await files.keep("app", "x_output.jsonl", OUTPUT_PURPOSE, b"{}\n", file_id=file_id)
    same = await files.keep("app", "x_output.jsonl", OUTPUT_PURPOSE, b"{}\n", file_id=file_id)
    assert again.id == same.id == file_id and same.created_at == again.created_at
    # max_files is 2: the output took one place, so one more file is let in.
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=b"{}\n")
    assert (await files.upload("app", upload)).id != file_id
