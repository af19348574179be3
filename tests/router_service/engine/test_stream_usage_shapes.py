"""What real upstreams write into a stream asked for its usage, and what a caller who did not
ask reads of it: OpenAI's `"usage": null` beside its `"obfuscation"` padding on every chunk
(cut as text, never parsed per chunk), and the empty-choices chunk some servers send at the
end without the usage (xAI) or before it."""

from __future__ import annotations

import httpx
import orjson
import pytest

from clients import chunk_from_openai
from clients.switchboard.v1 import chat_pb2
from router_service.engine._stream_usage import as_asked, cut_as_text
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import chat_stream
from tests.router_service.fake_upstream.helpers import chat_body, split_events


async def openai_chunks(fake: FakeUpstream) -> list[chat_pb2.ChatCompletionChunk]:
    """An OpenAI-like stream asked for its usage, as the router's codec reads it."""
    body = chat_body("a few words here", stream=True, stream_options={"include_usage": True})
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        raw = (await http.post("/chat/completions", json=body)).content
    return [chunk_from_openai(orjson.loads(e)) for e in split_events(raw)[:-1]]


async def test_openai_chunks_with_obfuscation_lose_their_null_usage_as_text(
    fake: FakeUpstream,
) -> None:
    fake.state.set_scenario(Scenario(obfuscation=True))
    *chunks, last = await openai_chunks(fake)
    assert last.HasField("usage") and '"obfuscation"' in last.extra_json
    for chunk in chunks:
        extra = orjson.loads(chunk.extra_json)
        assert list(extra)[-2:] == ["usage", "obfuscation"]  # as OpenAI writes them
        cut = cut_as_text(chunk.extra_json)
        assert cut is not None  # the fast path: no JSON parsed
        del extra["usage"]
        assert orjson.loads(cut) == extra
    shown = as_asked([*chunks, last], asked=False)
    assert len(shown) == len(chunks)
    assert all('"usage"' not in c.extra_json and '"obfuscation"' in c.extra_json for c in shown)


@pytest.mark.parametrize(
    ("extra", "cut"),
    [
        ('{"usage":null}', ""),
        ('{"a":1,"usage":null}', '{"a":1}'),
        ('{"usage":null,"obfuscation":"Zx9"}', '{"obfuscation":"Zx9"}'),
        ('{"a":"b","usage":null,"obfuscation":"Zx9"}', '{"a":"b","obfuscation":"Zx9"}'),
        (
            '{"a":{"usage":null},"usage":null,"obfuscation":""}',
            '{"a":{"usage":null},"obfuscation":""}',
        ),
    ],
)
def test_where_openai_writes_it_the_null_usage_is_cut_as_text(extra: str, cut: str) -> None:
    assert cut_as_text(extra) == cut


@pytest.mark.parametrize(
    "extra",
    [
        '{"usage":null,"obfuscation":"a\\"b"}',  # an escaped quote: parsed instead
        '{"usage":null,"obfuscation":"ab","x":1}',  # another key after it
        '{"x":{"usage":null,"obfuscation":"ab"}}',  # a nested object's
        '{"usage":null,"obfuscation":1}',
    ],
)
def test_null_usage_elsewhere_takes_the_parse(extra: str) -> None:
    assert cut_as_text(extra) is None
    chunk = chat_pb2.ChatCompletionChunk(id="c", extra_json=extra)
    chunk.choices.add().delta.text = "hi"
    [kept] = as_asked([chunk], asked=False)
    expected = orjson.loads(extra)
    expected.pop("usage", None)
    assert orjson.loads(kept.extra_json) == expected


async def test_a_caller_not_asking_reads_openai_chunks_without_usage(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    fake.state.set_scenario(Scenario(obfuscation=True, chunks=4))
    router = await start_router(base_config(fake.base_url))
    chunks = []
    async for event in router.stub.ChatStream(chat_stream(text="one two three four")):
        if event.WhichOneof("event") == "chunk":
            chunks.append(event.chunk)
        elif event.WhichOneof("event") == "summary":
            assert event.summary.usage.completion_tokens == 5
    assert fake.state.calls()[0].body["stream_options"] == {"include_usage": True}
    assert chunks and all(c.choices and not c.HasField("usage") for c in chunks)
    assert all('"usage"' not in c.extra_json for c in chunks)
    assert all('"obfuscation"' in c.extra_json for c in chunks)  # the upstream's own: kept


async def streamed(
    router: RouterHandle, *, asked: bool
) -> tuple[list[chat_pb2.ChatCompletionChunk], chat_pb2.Usage]:
    request = chat_stream(text="one two three")
    if asked:
        request.params.stream_options.include_usage = True
    chunks, usage = [], []
    async for event in router.stub.ChatStream(request):
        if event.WhichOneof("event") == "chunk":
            chunks.append(event.chunk)
        elif event.WhichOneof("event") == "summary":
            usage.append(event.summary.usage)
    return chunks, usage[0]


async def test_an_empty_chunk_the_ask_added_is_not_shown_to_a_caller_not_asking(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # xAI's way: the usage on the finish chunk, then a chunk of no choices and no usage.
    fake.state.set_scenario(Scenario(usage_on_finish=True, obfuscation=True))
    router = await start_router(base_config(fake.base_url))
    chunks, usage = await streamed(router, asked=False)
    assert usage.total_tokens == 7  # the finish chunk's, for the accounting
    assert all(c.choices and not c.HasField("usage") for c in chunks)
    assert chunks[-1].choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP
    # Asked by the caller: the stream as the upstream sent it.
    chunks, usage = await streamed(router, asked=True)
    assert chunks[-2].usage == usage and chunks[-2].choices
    assert list(chunks[-1].choices) == [] and not chunks[-1].HasField("usage")


def shell(extra: str) -> chat_pb2.ChatCompletionChunk:
    return chat_pb2.ChatCompletionChunk(id="c", model="m", extra_json=extra)


@pytest.mark.parametrize(
    "extra", ["", '{"usage":null}', '{"system_fingerprint":"fp","usage":null,"obfuscation":"x"}']
)
def test_only_a_shell_the_router_added_goes(extra: str) -> None:
    assert as_asked([shell(extra)], asked=False, added=True) == []
    [kept] = as_asked([shell(extra)], asked=False, added=False)  # the server's own: kept
    assert '"usage"' not in kept.extra_json
    assert as_asked([shell(extra)], asked=True, added=False) == [shell(extra)]
    # One that says something (Azure's opening annotation) is the caller's, asked or not.
    said = shell('{"prompt_filter_results":[{"prompt_index":0}],"usage":null}')
    [kept] = as_asked([said], asked=False, added=True)
    assert kept.extra_json == '{"prompt_filter_results":[{"prompt_index":0}]}'
