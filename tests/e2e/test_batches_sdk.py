"""Files and batches end to end: the official `openai` SDK's `client.files` and
`client.batches` → the edge → the router (which keeps the files in its state store and runs the
batch's lines through its engine) → the fake upstream. The batch's end is awaited where it runs
(`batch_jobs.settle`), never polled."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import orjson
import pytest
from openai.types import Batch

from router_service.batches import STOPPED_MESSAGE
from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.conftest import Guarded
from tests.e2e.stream_harness import StartEdge
from tests.helpers import metric_values
from tests.router_service.auth.helpers import client, guarded_config
from tests.router_service.auth.test_auth_grpc import audited

A, B = "sk-client-a", "sk-client-b"
Opened = tuple[RouterHandle, openai.AsyncOpenAI, openai.AsyncOpenAI]
Open = Callable[..., Awaitable[Opened]]


@pytest.fixture
async def open_batches(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[Open]:
    """A router with clients `a` (key A) and `b` (key B, with fields `b`) and these sections,
    an edge, and an SDK for each client."""
    sdks: list[openai.AsyncOpenAI] = []

    async def open_(
        *, clock: Clock = SYSTEM_CLOCK, b: dict[str, Any] | None = None, **sections: Any
    ) -> Opened:
        clients = client("a", A), client("b", B, **(b or {}))
        router = await start_router(
            guarded_config(fake.base_url, *clients, **sections), clock=clock
        )
        edge = await start_edge(router)
        for key in (A, B):
            sdks.append(
                openai.AsyncOpenAI(
                    base_url=f"{edge.base_url}/v1", api_key=key, max_retries=0, timeout=10
                )
            )
        return router, sdks[-2], sdks[-1]

    yield open_
    for sdk in sdks:
        await sdk.close()


def jsonl(*lines: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def chat_line(custom_id: str, model: str = "chain", text: str = "hi") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def counts(batch: Batch) -> tuple[int, int, int]:
    assert batch.request_counts is not None
    return batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed


async def run_batch(
    router: RouterHandle, sdk: openai.AsyncOpenAI, content: bytes, endpoint: Any
) -> Batch:
    """The batch of these lines on `endpoint`, once it ended."""
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h"
    )
    assert await router.server.batch_jobs.settle(10) == 0
    return await sdk.batches.retrieve(batch.id)


async def lines_of(sdk: openai.AsyncOpenAI, file_id: str) -> list[dict[str, Any]]:
    content = await sdk.files.content(file_id)
    return [orjson.loads(line) for line in content.content.splitlines()]


async def test_a_chat_batch_runs_its_lines_and_writes_output_and_error_files(
    fake: FakeUpstream, open_batches: Open
) -> None:
    router, sdk, _ = await open_batches()
    fake.state.set_scenario(
        Scenario(status=400, error_body={"error": {"message": "bad prompt", "code": "bad"}}),
        text="two",
    )
    lines = [chat_line("one"), chat_line("two", text="two"), chat_line("three")]
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(*lines)), purpose="batch")
    assert (uploaded.object, uploaded.purpose, uploaded.filename) == ("file", "batch", "in.jsonl")
    assert uploaded.id.startswith("file-") and uploaded.bytes == len(jsonl(*lines))
    batch = await sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"team": "search"},
    )
    assert batch.id.startswith("batch_") and batch.status in ("validating", "in_progress")
    assert batch.metadata == {"team": "search"} and counts(batch) == (3, 0, 0)
    assert await router.server.batch_jobs.settle(10) == 0
    done = await sdk.batches.retrieve(batch.id)
    assert done.status == "completed" and done.completed_at and done.in_progress_at
    assert counts(done) == (3, 2, 1)
    assert done.usage is not None and done.usage.total_tokens > 0
    assert done.output_file_id and done.error_file_id
    outputs = await lines_of(sdk, done.output_file_id)
    assert [o["custom_id"] for o in outputs] == ["one", "three"]
    first = outputs[0]
    assert first["id"].startswith("batch_req_") and first["error"] is None
    assert first["response"]["status_code"] == 200
    assert first["response"]["body"]["object"] == "chat.completion"
    assert first["response"]["body"]["choices"][0]["message"]["content"]
    (failed,) = await lines_of(sdk, done.error_file_id)
    assert failed["custom_id"] == "two" and failed["response"]["status_code"] == 400
    assert failed["response"]["body"]["error"]["message"] == "bad prompt"
    output_file = await sdk.files.retrieve(done.output_file_id)
    assert output_file.purpose == "batch_output"
    listed = [b.id async for b in sdk.batches.list()]
    assert listed == [batch.id]


def responses_line(custom_id: str, **body: Any) -> dict[str, Any]:
    body = {"model": "chain", "instructions": "Be brief.", "input": "hi", **body}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/responses", "body": body}


async def test_a_responses_batch_answers_response_objects_and_refuses_what_cannot_batch(
    open_batches: Open,
) -> None:
    router, sdk, _ = await open_batches()
    lines = [
        responses_line("kept"),
        responses_line("unkept", store=False, metadata={"k": "v"}),
        responses_line("background", background=True),
    ]
    done = await run_batch(router, sdk, jsonl(*lines), "/v1/responses")
    assert done.status == "completed" and counts(done) == (3, 2, 1)
    assert done.output_file_id and done.error_file_id
    kept, unkept = [o["response"]["body"] for o in await lines_of(sdk, done.output_file_id)]
    assert (kept["object"], kept["status"], kept["store"]) == ("response", "completed", True)
    assert kept["instructions"] == "Be brief." and kept["output"][0]["type"] == "message"
    assert kept["usage"]["input_tokens"] > 0
    assert (unkept["store"], unkept["metadata"]) == (False, {"k": "v"})
    stored = await sdk.responses.retrieve(kept["id"])  # as a direct call's, continued by id
    assert stored.output_text == kept["output"][0]["content"][0]["text"]
    follow = await sdk.responses.create(model="chain", input="more", previous_response_id=stored.id)
    assert follow.status == "completed"
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(unkept["id"])
    (refused,) = [e["response"] for e in await lines_of(sdk, done.error_file_id)]
    assert refused["status_code"] == 400 and refused["body"]["error"]["param"] == "background"


async def test_an_invalid_input_file_fails_the_batch_with_its_lines_at_fault(
    open_batches: Open,
) -> None:
    _, sdk, _ = await open_batches()
    good = chat_line("same")
    content = jsonl(good, good) + b"not json\n" + jsonl({**chat_line("x"), "url": "/v1/embeddings"})
    uploaded = await sdk.files.create(file=("bad.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.failed_at and batch.errors is not None
    found = [(e.code, e.line, e.param) for e in batch.errors.data or []]
    assert found == [
        ("duplicate_custom_id", 2, "custom_id"),
        ("invalid_json_line", 3, None),
        ("invalid_url", 4, "url"),
    ]
    assert (await sdk.batches.retrieve(batch.id)).status == "failed"
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/moderations", completion_window="24h"
        )


async def test_a_cancel_stops_the_lines_not_answered(
    fake: FakeUpstream, open_batches: Open
) -> None:
    router, sdk, _ = await open_batches(batches={"concurrency": 1})
    fake.state.hold()
    content = jsonl(chat_line("one"), chat_line("two"), chat_line("three"))
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the first line upstream")
    cancelled = await sdk.batches.cancel(batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at
    assert counts(cancelled) == (3, 0, 3) and cancelled.output_file_id is None
    assert cancelled.error_file_id  # the lines not run, as OpenAI lists them
    not_run = await lines_of(sdk, cancelled.error_file_id)
    assert [(e["custom_id"], e["response"], e["error"]["code"]) for e in not_run] == [
        (custom_id, None, "batch_cancelled") for custom_id in ("one", "two", "three")
    ]
    await fake.state.wait_for(lambda: fake.state.in_flight == 0, what="the line aborted")
    fake.state.release()
    assert fake.state.count(path="/chat/completions") == 1  # the others never ran
    again = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert await router.server.batch_jobs.settle(10) == 0
    # As OpenAI answers it: a 409 (the SDK's ConflictError), told not to retry it.
    with pytest.raises(openai.ConflictError) as refused:
        await sdk.batches.cancel(again.id)
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["message"] == "Cannot cancel a batch with status 'completed'."
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert (await sdk.batches.cancel(batch.id)).status == "cancelled"  # as it is


async def test_files_are_the_clients_own_and_bounded(open_batches: Open) -> None:
    _, sdk, other = await open_batches(files={"max_file_bytes": 1000, "client_bytes": 2100})
    mine = await sdk.files.create(file=("mine.txt", b"x" * 100), purpose="user_data")
    assert [f.id async for f in sdk.files.list()] == [mine.id]
    assert [f.id async for f in other.files.list()] == []
    for call in (other.files.retrieve, other.files.content, other.files.delete):
        with pytest.raises(openai.NotFoundError):
            await call(mine.id)
    with pytest.raises(openai.NotFoundError):
        await other.batches.create(
            input_file_id=mine.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.APIStatusError) as too_large:
        await sdk.files.create(file=("big.txt", b"x" * 1001), purpose="user_data")
    assert too_large.value.status_code == 413
    with pytest.raises(openai.BadRequestError, match="purpose"):
        await sdk.files.create(file=("a.txt", b"x"), purpose="assistants")
    second = await sdk.files.create(file=("two.txt", b"y" * 900), purpose="user_data")
    with pytest.raises(openai.RateLimitError, match=r"files\.client_bytes"):
        await sdk.files.create(file=("three.txt", b"z" * 900), purpose="user_data")
    assert [f.id async for f in sdk.files.list()] == [second.id, mine.id]
    assert (await sdk.files.content(second.id)).content == b"y" * 900
    assert (await sdk.files.delete(mine.id)).deleted
    assert [f.id async for f in sdk.files.list(purpose="user_data")] == [second.id]


async def test_each_line_is_its_clients_own_call(fake: FakeUpstream, open_batches: Open) -> None:
    router, _, sdk = await open_batches(b={"models": ["embedder"]})
    line = {"method": "POST", "url": "/v1/embeddings", "custom_id": "one"}
    content = jsonl({**line, "body": {"model": "embedder", "input": "hello"}})
    done = await run_batch(router, sdk, content, "/v1/embeddings")
    assert done.status == "completed" and counts(done) == (1, 1, 0) and done.output_file_id
    (answer,) = await lines_of(sdk, done.output_file_id)
    assert answer["response"]["body"]["object"] == "list"
    assert answer["response"]["body"]["data"][0]["object"] == "embedding"
    # A model the client may not call: each line refused as its own call would be.
    content = jsonl({**line, "body": {"model": "chain", "input": "hello"}})
    done = await run_batch(router, sdk, content, "/v1/embeddings")
    assert done.status == "completed" and counts(done) == (1, 0, 1) and done.error_file_id
    (refused,) = await lines_of(sdk, done.error_file_id)
    assert refused["response"]["status_code"] == 403
    assert refused["response"]["body"]["error"]["code"] == "model_not_allowed"
    assert fake.state.count(path="/embeddings") == 1


async def test_a_stopping_router_on_the_memory_store_ends_its_batch_failed(
    fake: FakeUpstream, open_batches: Open
) -> None:
    # One process: no other replica can take the batch over (test_batch_handover.py: Redis).
    with TelemetryCapture(tracing=False) as captured:
        router, sdk, _ = await open_batches(batches={"concurrency": 1})
        fake.state.set_scenario(Scenario(stall_before_first_byte=True), text="two")
        content = jsonl(chat_line("one"), chat_line("two", text="two"))
        uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
        batch = await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        await fake.state.wait_for(lambda: fake.state.count(text="two") == 1, what="two up")
        await router.server.shutdown(grace=0)
        ended = metric_values(captured, "switchboard.batches.ended")
        lines = metric_values(captured, "switchboard.batches.lines")
    assert ended == {(("status", "failed"),): 1} and lines == {(("outcome", "completed"),): 1}
    stopped = await router.runtime.batches.get("a", batch.id)
    assert stopped.status == "failed"
    assert [e.message for e in stopped.errors] == [STOPPED_MESSAGE]
    assert stopped.output_file_id  # what it answered, written out


async def test_guardrails_screen_each_line_as_it_runs(
    fake: FakeUpstream, guarded_sdk: Guarded
) -> None:
    rules = [
        {"name": "no-credentials", "detect": ["api_key"], "action": "block"},
        {"name": "pii", "detect": ["email"], "action": "redact"},
    ]
    router, sdk = await guarded_sdk(rules)
    content = jsonl(
        chat_line("blocked", text="key AKIAIOSFODNN7EXAMPLE"),
        chat_line("redacted", text="I am jane@example.com"),
    )
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert await router.server.batch_jobs.settle(10) == 0
    done = await sdk.batches.retrieve(batch.id)
    assert done.error_file_id and counts(done) == (2, 1, 1)
    (blocked,) = await lines_of(sdk, done.error_file_id)
    assert blocked["custom_id"] == "blocked" and blocked["response"]["status_code"] == 400
    assert blocked["response"]["body"]["error"]["code"] == "content_policy_violation"
    (record,) = fake.state.calls(path="/chat/completions")
    assert record.body["messages"][0]["content"] == "I am [REDACTED:email]"


async def test_what_answer_guardrails_do_to_a_line_is_audited_as_for_a_call(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules = [
        {"name": "answer-keys", "detect": ["api_key"], "action": "block", "apply_to": ["response"]},
        {"name": "answer-pii", "detect": ["email"], "action": "redact", "apply_to": ["response"]},
    ]
    auth = {"clients": [client("a", A)], "audit": "all"}
    router = await start_router(base_config(fake.base_url, auth=auth, guardrails=rules))
    edge = await start_edge(router)
    caplog.set_level(logging.INFO, logger="switchboard.audit")
    content = jsonl(
        chat_line("withheld", text="key AKIAIOSFODNN7EXAMPLE"),  # the fake echoes it back
        chat_line("redacted", text="I am jane@example.com"),
    )
    async with openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key=A) as sdk:
        batch = await run_batch(router, sdk, content, "/v1/chat/completions")
        assert batch.output_file_id
        answers = {line["custom_id"]: line for line in await lines_of(sdk, batch.output_file_id)}
    [choice] = answers["withheld"]["response"]["body"]["choices"]
    assert choice["finish_reason"] == "content_filter"
    lines = [audited(r) for r in caplog.records if r.name == "switchboard.audit"]
    answered = [line for line in lines if str(line["outcome"]).startswith("answer_")]
    assert sorted((line["outcome"], line["client"], line["reason"]) for line in answered) == [
        ("answer_redacted", "a", "guardrail:answer-pii"),
        ("answer_withheld", "a", "guardrail:answer-keys:api_key"),
    ]
    assert {line["peer"] for line in answered} == {f"batch:{batch.id}"}
    assert {line["method"] for line in answered} == {"/switchboard.v1.RouterService/Chat"}


@pytest.mark.parametrize(
    ("endpoint", "body", "field"),
    [
        ("/v1/completions", {"prompt": "key AKIAIOSFODNN7EXAMPLE"}, "prompt"),
        # Of several prompts (each a chat call, as the edge makes them), the one blocked.
        ("/v1/completions", {"prompt": ["hi", "key AKIAIOSFODNN7EXAMPLE"]}, "prompt[1]"),
        ("/v1/responses", {"input": "key AKIAIOSFODNN7EXAMPLE"}, "input"),
    ],
)
async def test_a_blocked_line_names_the_field_its_endpoint_has(
    guarded_sdk: Guarded, endpoint: str, body: dict[str, Any], field: str
) -> None:
    """A line's error is the one the edge answers the same call with: a guardrail's block of a
    legacy completion's prompt names `prompt`, of a Response's input `input` (not chat's
    `messages`, which neither API has)."""
    rules = [{"name": "no-credentials", "detect": ["api_key"], "action": "block"}]
    router, sdk = await guarded_sdk(rules)
    line = {"custom_id": "blocked", "method": "POST", "url": endpoint}
    content = jsonl({**line, "body": {"model": "chain", **body}})
    done = await run_batch(router, sdk, content, endpoint)
    assert done.error_file_id and counts(done) == (1, 0, 1)
    (blocked,) = await lines_of(sdk, done.error_file_id)
    error = blocked["response"]["body"]["error"]
    assert (error["code"], error["param"]) == ("content_policy_violation", field)
    assert f"`{field}`" in error["message"] and "messages" not in error["message"]


async def test_a_stopping_replica_refuses_a_batch_as_worth_a_retry(open_batches: Open) -> None:
    """A replica that began to stop starts no more batches: another one takes the SDK's retry
    (`x-should-retry: true`), as the refusal itself says ("create the batch again")."""
    router, sdk, _ = await open_batches()
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(chat_line("one"))), purpose="batch")
    router.server.batch_jobs.close()  # what a stop does first
    with pytest.raises(openai.APIStatusError) as caught:
        await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "true"
