"""A batch's input file as editors and SDK users write it, through the official `openai` SDK →
the edge → the router: a file a Windows editor saved (a UTF-8 byte order mark first) runs as
any other, and a line asking to stream fails the batch at validation whatever its endpoint (as
OpenAI's Batch API: a line is answered whole, into the output file)."""

from __future__ import annotations

import codecs
from typing import Any

import openai
import pytest

from tests.e2e.test_batches_sdk import (
    Open,
    chat_line,
    counts,
    jsonl,
    lines_of,
    open_batches,
    responses_line,
    run_batch,
)

__all__ = ["open_batches"]  # the fixture, used here


async def test_an_input_file_saved_by_a_windows_editor_runs(open_batches: Open) -> None:
    router, sdk, _ = await open_batches()
    # As Notepad saves it: a byte order mark first, each line ending CRLF.
    content = codecs.BOM_UTF8 + jsonl(chat_line("one"), chat_line("two")).replace(b"\n", b"\r\n")
    done = await run_batch(router, sdk, content, "/v1/chat/completions")
    assert done.status == "completed" and counts(done) == (2, 2, 0)
    assert done.output_file_id
    outputs = await lines_of(sdk, done.output_file_id)
    assert [o["custom_id"] for o in outputs] == ["one", "two"]


async def test_a_byte_order_mark_is_skipped_at_the_start_of_the_file_only(
    open_batches: Open,
) -> None:
    _, sdk, _ = await open_batches()
    content = jsonl(chat_line("one")) + codecs.BOM_UTF8 + jsonl(chat_line("two"))
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.errors is not None
    assert [(e.code, e.line) for e in batch.errors.data or []] == [("invalid_json_line", 2)]


def _streamed(line: dict[str, Any], stream: Any) -> dict[str, Any]:
    return {**line, "body": {**line["body"], "stream": stream}}


@pytest.mark.parametrize(
    ("endpoint", "line"),
    [
        ("/v1/chat/completions", chat_line("streamed")),
        ("/v1/completions", {**chat_line("streamed"), "url": "/v1/completions"}),
        ("/v1/responses", responses_line("streamed")),
    ],
)
async def test_a_line_asking_to_stream_fails_the_batch_at_validation_on_every_endpoint(
    open_batches: Open, endpoint: Any, line: dict[str, Any]
) -> None:
    _, sdk, _ = await open_batches()
    if endpoint == "/v1/completions":
        line = {**line, "body": {"model": "chain", "prompt": "hi"}}
    good = {**line, "custom_id": "whole"}
    content = jsonl(_streamed(good, False), _streamed(line, True))
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h"
    )
    assert batch.status == "failed" and batch.errors is not None
    found = [(e.code, e.line, e.param) for e in batch.errors.data or []]
    assert found == [("unsupported_value", 2, "body.stream")]
    assert counts(batch) == (0, 0, 0)


async def test_stream_false_is_answered_whole(open_batches: Open) -> None:
    router, sdk, _ = await open_batches()
    lines = [_streamed(chat_line("chat"), False)]
    done = await run_batch(router, sdk, jsonl(*lines), "/v1/chat/completions")
    assert done.status == "completed" and counts(done) == (1, 1, 0)
    responses = [_streamed(responses_line("resp"), False)]
    done = await run_batch(router, sdk, jsonl(*responses), "/v1/responses")
    assert done.status == "completed" and counts(done) == (1, 1, 0)


async def test_a_line_naming_stored_state_is_one_400_whether_or_not_it_exists(
    open_batches: Open,
) -> None:
    """A batch line is answered on its own: nothing stored is read for it, so an id naming a
    response (or conversation, or item) the client has and one it has not are the same 400,
    which says it is the batch that cannot (`POST /v1/responses` answers the unknown one 404),
    never the 404 of an id that was not even looked up, nor "was not loaded" as if it failed."""
    router, sdk, _ = await open_batches()
    known = await sdk.responses.create(model="chain", input="hi")
    conversation = await sdk.conversations.create()
    item = {"type": "item_reference", "id": known.output[0].id}
    lines = [
        responses_line("known", previous_response_id=known.id),
        responses_line("unknown", previous_response_id="resp_unknown"),
        responses_line("conversation", conversation=conversation.id),
        responses_line("item", input=[{"role": "user", "content": "hi"}, item]),
        responses_line("bare item", input=[{"role": "user", "content": "hi"}, {"id": item["id"]}]),
    ]
    done = await run_batch(router, sdk, jsonl(*lines), "/v1/responses")
    assert done.status == "completed" and counts(done) == (5, 0, 5)
    assert done.error_file_id
    refused = {e["custom_id"]: e["response"] for e in await lines_of(sdk, done.error_file_id)}
    assert {k: (r["status_code"], r["body"]["error"]["param"]) for k, r in refused.items()} == {
        "known": (400, "previous_response_id"),
        "unknown": (400, "previous_response_id"),
        "conversation": (400, "conversation"),
        "item": (400, "input[1]"),
        "bare item": (400, "input[1]"),  # OpenAI's reference may leave out its type
    }
    messages = [r["body"]["error"]["message"] for r in refused.values()]
    assert all("batch" in m and "not loaded" not in m for m in messages), messages
    assert refused["known"]["body"]["error"] == refused["unknown"]["body"]["error"]


@pytest.mark.parametrize("filename", ["requests.txt", "requests.json", "requests"])
async def test_a_batch_file_not_named_jsonl_is_refused_as_openai_refuses_it(
    open_batches: Open, filename: str
) -> None:
    """OpenAI refuses a `batch` file whose name does not end `.jsonl` (400, "Invalid file
    format for Batch API. Must be .jsonl"), sent whole or in parts; a `user_data` one is kept."""
    _, sdk, _ = await open_batches()
    content = jsonl(chat_line("one"))
    with pytest.raises(openai.BadRequestError) as whole:
        await sdk.files.create(file=(filename, content), purpose="batch")
    assert "Must be .jsonl" in whole.value.message
    with pytest.raises(openai.BadRequestError) as in_parts:
        await sdk.uploads.create(
            bytes=len(content), filename=filename, mime_type="text/jsonl", purpose="batch"
        )
    assert "Must be .jsonl" in in_parts.value.message
    assert [f async for f in sdk.files.list()] == []
    await sdk.files.create(file=(filename, content), purpose="user_data")
    await sdk.files.create(file=("REQUESTS.JSONL", content), purpose="batch")


@pytest.mark.parametrize(("filename", "purpose"), [("in.jsonl", "batch"), ("a.txt", "user_data")])
async def test_an_empty_file_is_refused_as_openai_refuses_it(
    open_batches: Open, filename: str, purpose: Any
) -> None:
    """OpenAI answers a 0-byte `files.create` with a 400 ("File is empty."), as an upload in
    parts declaring 0 `bytes` is one here: nothing kept, nothing counted."""
    _, sdk, _ = await open_batches()
    with pytest.raises(openai.BadRequestError) as empty:
        await sdk.files.create(file=(filename, b""), purpose=purpose)
    assert empty.value.message.endswith("File is empty.") and empty.value.param == "file"
    assert [f async for f in sdk.files.list()] == []


async def test_a_batch_names_the_model_of_its_lines_as_openais_batch_object_does(
    open_batches: Open,
) -> None:
    """`Batch.model`: the model its lines ask for, from its creation on (None where they ask
    for several: OpenAI's batches are of one model)."""
    router, sdk, _ = await open_batches()
    done = await run_batch(
        router, sdk, jsonl(chat_line("a"), chat_line("b")), "/v1/chat/completions"
    )
    assert done.status == "completed" and done.model == "chain"
    assert (await sdk.batches.retrieve(done.id)).model == "chain"
    odd: Any = {"name": "chain"}  # not a model's name: the line fails as it runs, not this
    for mixed in (
        jsonl(chat_line("a"), chat_line("b", model="other")),
        jsonl(chat_line("a", model=odd)),
    ):
        uploaded = await sdk.files.create(file=("in.jsonl", mixed), purpose="batch")
        batch = await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert batch.model is None


async def test_a_batch_whose_lines_ask_for_different_models_fails_at_validation(
    open_batches: Open,
) -> None:
    """One model per batch, as OpenAI's: each line asking for another model than the first
    line's is listed in the batch's errors, and nothing runs (every line ran, each on its
    own model)."""
    router, sdk, _ = await open_batches()
    content = jsonl(chat_line("a"), chat_line("b", model="a"), chat_line("c"), chat_line("d", "a"))
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.errors is not None and batch.failed_at
    errors = batch.errors.data or []
    found = [(e.code, e.line, e.param) for e in errors]
    assert found == [("mismatched_model", 2, "body.model"), ("mismatched_model", 4, "body.model")]
    assert "'a'" in str(errors[0].message) and counts(batch) == (0, 0, 0)
    assert await router.server.batch_jobs.settle(10) == 0
    assert (await sdk.batches.retrieve(batch.id)).status == "failed"


async def test_a_line_not_in_utf8_is_refused_naming_its_byte(open_batches: Open) -> None:
    """A line written in another encoding (Windows PowerShell 5.1 writes Latin-1 or UTF-16) is
    refused as a request body is: naming its first byte that is not UTF-8, not as "not JSON"."""
    _, sdk, _ = await open_batches()
    latin = jsonl(chat_line("two", text="café")).decode().encode("latin-1")
    content = jsonl(chat_line("one")) + latin
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.errors is not None
    [error] = batch.errors.data or []
    at = latin.index(b"\xe9")
    assert (error.code, error.line, error.message) == (
        "invalid_json_line",
        2,
        f"This line is not valid JSON: it is not UTF-8 (byte 0xE9 at offset {at} is no UTF-8 "
        "character's). Send JSON encoded as UTF-8.",
    )
