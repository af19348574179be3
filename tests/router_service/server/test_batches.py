"""The files and batches RPCs through the Python clients, on a real router: each call's answer
and typed refusal; a batch's lines held to their client's rpm wait their turn (the router's
clock moves as they wait) rather than fail."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from clients import RouterClient, RouterError, SyncRouterClient
from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.helpers import metric_values
from tests.router_service.auth.helpers import bearer, client, guarded_config

KEY = "sk-batch-client"


async def test_the_python_clients_keep_files_and_run_batches(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(base_config(fake.base_url, files={"max_file_bytes": 1000}))
    upload = bpb.UploadFileRequest(
        filename="in.jsonl", purpose="batch", content=jsonl(chat_line("a"))
    )
    async with RouterClient(router.server.address) as calls:
        kept = (await calls.upload_file(upload, timeout=10)).file
        assert (kept.purpose, kept.bytes) == ("batch", len(upload.content))
        listed = await calls.list_files(bpb.ListFilesRequest(purpose="batch"), timeout=10)
        assert [f.id for f in listed.files] == [kept.id] and not listed.has_more
        create = bpb.CreateBatchRequest(
            input_file_id=kept.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        batch = (await calls.create_batch(create, timeout=10)).batch
        assert await router.server.batch_jobs.settle(10) == 0
        done = (await calls.get_batch(bpb.GetBatchRequest(id=batch.id), timeout=10)).batch
        assert done.status == "completed" and done.request_counts.completed == 1
        output = bpb.GetFileContentRequest(id=done.output_file_id)
        (line,) = (await calls.get_file_content(output, timeout=10)).content.splitlines()
        assert orjson.loads(line)["response"]["status_code"] == 200
        with pytest.raises(RouterError) as refused:
            await calls.cancel_batch(bpb.CancelBatchRequest(id=batch.id), timeout=10)
        assert refused.value.reason == "BATCH_NOT_CANCELLABLE" and refused.value.http_status == 409
        await calls.delete_file(bpb.DeleteFileRequest(id=kept.id), timeout=10)
    with SyncRouterClient(router.server.address) as sync:
        with pytest.raises(RouterError) as gone:
            await asyncio.to_thread(sync.get_file, bpb.GetFileRequest(id=kept.id), timeout=10)
        assert gone.value.reason == "FILE_NOT_FOUND" and gone.value.http_status == 404
        batches = await asyncio.to_thread(sync.list_batches, bpb.ListBatchesRequest(), timeout=10)
        assert [b.id for b in batches.batches] == [batch.id]
        with pytest.raises(RouterError) as too_large:
            big = bpb.UploadFileRequest(filename="b", purpose="user_data", content=b"x" * 1001)
            await asyncio.to_thread(sync.upload_file, big, timeout=10)
        assert too_large.value.reason == "FILE_TOO_LARGE" and too_large.value.http_status == 413


async def test_lines_over_the_clients_rpm_wait_their_turn(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    config = guarded_config(fake.base_url, client("c", KEY, rpm=1), batches={"concurrency": 1})
    router = await start_router(config, clock=clock)
    content = jsonl(chat_line("first"), chat_line("second"))
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=content)
    kept = await router.stub.UploadFile(upload, metadata=bearer(KEY))
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    started_at = clock.now()
    batch = await router.stub.CreateBatch(create, metadata=bearer(KEY))
    assert await router.server.batch_jobs.settle(10) == 0
    done = await router.stub.GetBatch(bpb.GetBatchRequest(id=batch.batch.id), metadata=bearer(KEY))
    counts = done.batch.request_counts
    assert (counts.completed, counts.failed) == (2, 0)
    assert clock.now() - started_at >= 1  # the second line waited for the client's rpm
    assert fake.state.count(path="/chat/completions") == 2


async def test_a_lines_several_prompts_wait_for_the_clients_rpm_each_made_once(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Each prompt of a legacy completion line is a Chat call of its client's: over its rpm the
    next waits its turn, and the ones answered before are not made again."""
    clock = ManualClock()
    config = guarded_config(fake.base_url, client("c", KEY, rpm=1))
    router = await start_router(config, clock=clock)
    body = {"model": "chain", "prompt": ["a", "b", "c"]}
    line = {"custom_id": "three", "method": "POST", "url": "/v1/completions", "body": body}
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=jsonl(line))
    kept = await router.stub.UploadFile(upload, metadata=bearer(KEY))
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/completions", completion_window="24h"
    )
    started_at = clock.now()
    batch = await router.stub.CreateBatch(create, metadata=bearer(KEY))
    assert await router.server.batch_jobs.settle(10) == 0
    done = await router.stub.GetBatch(bpb.GetBatchRequest(id=batch.batch.id), metadata=bearer(KEY))
    assert (done.batch.request_counts.completed, done.batch.request_counts.failed) == (1, 0)
    assert clock.now() - started_at >= 2  # the second and third prompts waited their turn
    sent = [r.body["messages"][0]["content"] for r in fake.state.calls()]
    assert sent == ["a", "b", "c"]
    output = bpb.GetFileContentRequest(id=done.batch.output_file_id)
    (answer,) = (
        await router.stub.GetFileContent(output, metadata=bearer(KEY))
    ).content.splitlines()
    choices = orjson.loads(answer)["response"]["body"]["choices"]
    assert [c["text"] for c in choices] == ["Echo: a", "Echo: b", "Echo: c"]


async def ended(router: RouterHandle, content: bytes, metadata: Any = ()) -> bpb.Batch:
    """The batch of `content` (chat lines) once its replica has ended it."""
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=content)
    kept = await router.stub.UploadFile(upload, metadata=metadata)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = await router.stub.CreateBatch(create, metadata=metadata)
    assert await router.server.batch_jobs.settle(10) == 0
    asked = bpb.GetBatchRequest(id=batch.batch.id)
    found: bpb.GetBatchResponse = await router.stub.GetBatch(asked, metadata=metadata)
    return found.batch


async def test_lines_not_run_within_the_window_expire(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = base_config(fake.base_url, batches={"completion_window_s": 0.5})
    router = await start_router(config, clock=ManualClock(1_700_000_000.75))
    batch = await ended(router, jsonl(chat_line("one"), chat_line("two")))
    assert batch.status == "expired" and batch.expired_at and not batch.output_file_id
    assert (batch.request_counts.completed, batch.request_counts.failed) == (0, 2)
    errors = await router.stub.GetFileContent(bpb.GetFileContentRequest(id=batch.error_file_id))
    lines = [orjson.loads(line) for line in errors.content.splitlines()]
    assert [(line["custom_id"], line["error"]["code"]) for line in lines] == [
        ("one", "batch_expired"),
        ("two", "batch_expired"),
    ]


async def test_an_output_past_the_clients_file_quota_fails_the_batch(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(base_config(fake.base_url, files={"client_bytes": 1200}))
    batch = await ended(router, jsonl(chat_line("one")))
    assert batch.status == "failed" and batch.request_counts.completed == 1
    assert [e.code for e in batch.errors] == ["output_not_kept"]
    assert "files.client_bytes" in batch.errors[0].message


async def test_a_completions_batch_answers_text_completions(router: RouterHandle) -> None:
    line = {"method": "POST", "url": "/v1/completions"}
    content = jsonl(
        {**line, "custom_id": "one", "body": {"model": "chain", "prompt": "Say hi"}},
        {**line, "custom_id": "two", "body": {"model": "chain", "prompt": ["a", "b"]}},
    )
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=content)
    kept = await router.stub.UploadFile(upload)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/completions", completion_window="24h"
    )
    batch = await router.stub.CreateBatch(create)
    assert await router.server.batch_jobs.settle(10) == 0
    found = await router.stub.GetBatch(bpb.GetBatchRequest(id=batch.batch.id))
    output = await router.stub.GetFileContent(
        bpb.GetFileContentRequest(id=found.batch.output_file_id)
    )
    one, two = [orjson.loads(line)["response"]["body"] for line in output.content.splitlines()]
    assert one["object"] == "text_completion"
    assert one["choices"][0]["text"] == "Echo: Say hi"
    # Several prompts, as `POST /v1/completions` answers them: a choice per prompt, in order,
    # the usage added up.
    assert [(c["index"], c["text"]) for c in two["choices"]] == [(0, "Echo: a"), (1, "Echo: b")]
    assert two["usage"]["prompt_tokens"] == 2  # a token each (the fake counts words)
    assert (found.batch.request_counts.completed, found.batch.request_counts.failed) == (2, 0)


async def test_a_line_whose_later_prompt_fails_counts_the_tokens_its_earlier_ones_used(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Prompt 2 of 3 refused (a guardrail's block): the line fails as the endpoint would,
    naming `prompt[1]`, the third is not sent, and the tokens the first used (billed to the
    client as its own call's) are in the batch's usage, not lost with the line's answer."""
    rules = [{"name": "no-credentials", "detect": ["api_key"], "action": "block"}]
    router = await start_router(base_config(fake.base_url, guardrails=rules))
    body = {"model": "chain", "prompt": ["one two three", "key AKIAIOSFODNN7EXAMPLE", "c"]}
    line = {"custom_id": "three", "method": "POST", "url": "/v1/completions", "body": body}
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=jsonl(line))
    kept = await router.stub.UploadFile(upload)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/completions", completion_window="24h"
    )
    batch = await router.stub.CreateBatch(create)
    assert await router.server.batch_jobs.settle(10) == 0
    done = (await router.stub.GetBatch(bpb.GetBatchRequest(id=batch.batch.id))).batch
    assert (done.request_counts.completed, done.request_counts.failed) == (0, 1)
    errors = bpb.GetFileContentRequest(id=done.error_file_id)
    (failed,) = (await router.stub.GetFileContent(errors)).content.splitlines()
    assert orjson.loads(failed)["response"]["body"]["error"]["param"] == "prompt[1]"
    (sent,) = fake.state.calls()
    assert sent.body["messages"][0]["content"] == "one two three"
    assert done.usage.input_tokens == 3  # a token a word (the fake's count)
    assert done.usage.output_tokens > 0


async def test_a_clients_batches_waiting_for_a_slot_are_capped_and_hold_no_lines(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    batches = {"max_running": 1, "max_waiting_per_client": 1}
    router = await start_router(base_config(fake.base_url, batches=batches))
    fake.state.hold()
    upload = bpb.UploadFileRequest(
        filename="in.jsonl", purpose="batch", content=jsonl(chat_line("a"))
    )
    with TelemetryCapture(tracing=False) as captured:
        async with RouterClient(router.server.address) as calls:
            kept = (await calls.upload_file(upload, timeout=10)).file
            create = bpb.CreateBatchRequest(
                input_file_id=kept.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            await calls.create_batch(create, timeout=10)  # runs: its line is held upstream
            await fake.state.wait_for(lambda: fake.state.held == 1, what="the first batch's line")
            waiting = (await calls.create_batch(create, timeout=10)).batch
            job = router.server.batch_jobs._jobs[("", waiting.id)]
            assert (job.lines, list(job.pending)) == ([], [])  # read once it has a slot
            assert metric_values(captured, "switchboard.batches.running") == {(): 1}
            with pytest.raises(RouterError) as refused:
                await calls.create_batch(create, timeout=10)
            assert refused.value.reason == "BATCH_WAIT_LIMIT" and refused.value.http_status == 429
            fake.state.release()
            assert await router.server.batch_jobs.settle(10) == 0
            done = (await calls.get_batch(bpb.GetBatchRequest(id=waiting.id), timeout=10)).batch
            assert done.status == "completed" and done.request_counts.completed == 1


async def refused_embed_line(router: RouterHandle, body: dict[str, Any], metadata: Any) -> Any:
    """The error file's `response` of a batch's one embeddings line, `body`, which failed."""
    line = {"custom_id": "e", "method": "POST", "url": "/v1/embeddings", "body": body}
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=jsonl(line))
    kept = await router.stub.UploadFile(upload, metadata=metadata)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    batch = await router.stub.CreateBatch(create, metadata=metadata)
    assert await router.server.batch_jobs.settle(10) == 0
    done = await router.stub.GetBatch(bpb.GetBatchRequest(id=batch.batch.id), metadata=metadata)
    assert done.batch.request_counts.failed == 1
    errors = bpb.GetFileContentRequest(id=done.batch.error_file_id)
    (refused,) = (await router.stub.GetFileContent(errors, metadata=metadata)).content.splitlines()
    return orjson.loads(refused)["response"]


async def test_a_line_needs_its_calls_scope(fake: FakeUpstream, start_router: StartRouter) -> None:
    # A batch is made with the `chat` scope; an embeddings line is an Embed call all the same.
    config = guarded_config(fake.base_url, client("c", KEY, scopes=["chat"]))
    router = await start_router(config)
    body = {"model": "embedder", "input": "hello"}
    response = await refused_embed_line(router, body, bearer(KEY))
    assert (response["status_code"], response["body"]["error"]["code"]) == (403, "missing_scope")
    assert fake.state.count(path="/embeddings") == 0


async def test_an_embeddings_line_with_no_input_is_refused_before_any_call(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(base_config(fake.base_url))
    response = await refused_embed_line(router, {"model": "embedder", "input": []}, ())
    assert (response["status_code"], response["body"]["error"]["param"]) == (400, "input")
    assert fake.state.count() == 0


async def test_a_batch_is_let_in_by_its_routers_gate_not_a_new_one(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    # A key expiring within a week is warned about as the config loads: once, not again at
    # each batch (each batch made a gate of its own, and logged every such key once more).
    soon = {"key": KEY, "expires": "2023-11-16T00:00:00Z"}  # two days after the clock's now
    config = guarded_config(fake.base_url, {"name": "c", "key": [soon]})
    with caplog.at_level(logging.WARNING, logger="switchboard.auth"):
        router = await start_router(config, clock=ManualClock())
        for _ in range(2):
            await ended(router, jsonl(chat_line("one")), bearer(KEY))
    warnings = [r for r in caplog.records if "expires in" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_line_refused_as_invalid_gives_its_rpm_place_back(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A line the router refuses for the request itself (no upstream reached) used nothing, as
    the client's own call refused so: its rpm place is given back, and the next line of the
    client's rpm of 1 runs at once, not a minute later."""
    clock = ManualClock()
    config = guarded_config(fake.base_url, client("c", KEY, rpm=1), batches={"concurrency": 1})
    router = await start_router(config, clock=clock)
    empty = chat_line("empty")
    empty["body"]["messages"] = []
    upload = bpb.UploadFileRequest(
        filename="in.jsonl", purpose="batch", content=jsonl(empty, chat_line("second"))
    )
    kept = await router.stub.UploadFile(upload, metadata=bearer(KEY))
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    started_at = clock.now()
    batch = await router.stub.CreateBatch(create, metadata=bearer(KEY))
    assert await router.server.batch_jobs.settle(10) == 0
    done = await router.stub.GetBatch(bpb.GetBatchRequest(id=batch.batch.id), metadata=bearer(KEY))
    counts = done.batch.request_counts
    assert (counts.completed, counts.failed) == (1, 1)
    assert clock.now() == started_at  # the second line did not wait for the client's rpm
    assert fake.state.count(path="/chat/completions") == 1
