"""Streamed background responses end to end with the official `openai` SDK: `responses.create(
..., background=True, stream=True)` streams the events the router records, the caller breaks
off, and `responses.retrieve(id, stream=True, starting_after=N)` replays the rest (then follows
the live ones); a cancel ends a follower with the cancelled Response; a background response in
a conversation adds its items to it. The upstream holds its answer (`hold`/`release`) while a
test looks; jobs are awaited through their own end (`settled`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from router_service.auth._issued import LOG_NAME as ISSUED_KEYS_LOG
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import MemoryStateStore
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.background import held, settled
from tests.e2e.stream_harness import StartEdge
from tests.helpers import eventually

Stack = tuple[RouterHandle, openai.AsyncOpenAI]


async def _stack(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, **responses: Any
) -> AsyncIterator[Stack]:
    router = await start_router(base_config(fake.base_url, responses=responses))
    edge = await start_edge(router)
    sdk = openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    )
    try:
        yield router, sdk
    finally:
        fake.state.release()
        await sdk.close()


@pytest.fixture
async def stack(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[Stack]:
    async for opened in _stack(fake, start_router, start_edge):
        yield opened


async def _watching(router: RouterHandle, count: int) -> None:
    """Until `count` followers watch for new events (an effect of the edge's call, not ours)."""
    store = router.server.runtime.store
    assert isinstance(store, MemoryStateStore)

    async def watched() -> bool:
        # The issued client keys' follower watches for as long as the router runs.
        board = store.flight_board
        return board.watching - board.watches_of(ISSUED_KEYS_LOG) == count

    await eventually(watched, what=f"{count} follower(s)")


async def _broken_off(fake: FakeUpstream, sdk: openai.AsyncOpenAI, text: str) -> list[Any]:
    """Start a streamed background response whose upstream holds its answer, and leave its
    stream after `response.in_progress`: its events so far."""
    fake.state.hold()
    stream = await sdk.responses.create(model="chain", input=text, background=True, stream=True)
    head = await _events(stream, until="response.in_progress")
    await held(fake)  # the job runs on without its caller
    return head


async def _events(stream: Any, until: str = "") -> list[Any]:
    """The stream's events, up to and with the first of type `until` (then it is closed)."""
    seen = []
    async for event in stream:
        seen.append(event)
        if event.type == until:
            break
    await stream.close()
    return seen


async def test_a_broken_off_stream_is_resumed_live_then_replayed_once_finished(
    fake: FakeUpstream, stack: Stack
) -> None:
    router, sdk = stack
    head = await _broken_off(fake, sdk, "resume me")  # answered once the caller is back
    assert [(e.type, e.sequence_number) for e in head] == [
        ("response.created", 0),
        ("response.queued", 1),
        ("response.in_progress", 2),
    ]
    assert head[0].response.status == "queued" and head[0].response.background is True
    response_id = head[0].response.id
    resumed = await sdk.responses.retrieve(response_id, stream=True, starting_after=1)
    first = await anext(resumed)  # replayed: recorded before the caller left
    fake.state.release()  # the rest is live
    rest = [first, *await _events(resumed)]
    numbers = [e.sequence_number for e in rest]
    assert numbers == list(range(2, 2 + len(rest)))  # each once, in order
    assert rest[-1].type == "response.completed"
    text = "".join(e.delta for e in rest if e.type == "response.output_text.delta")
    assert text == rest[-1].response.output_text == "Echo: resume me"
    final = await settled(sdk, response_id, router.server)
    assert final.output_text == "Echo: resume me"
    again = await _events(await sdk.responses.retrieve(response_id, stream=True, starting_after=4))
    assert [e.sequence_number for e in again] == numbers[3:]  # finished: replayed, then ended
    # A caller that lost its connection as the last event arrived: nothing more, not a 502.
    seen = await sdk.responses.retrieve(response_id, stream=True, starting_after=numbers[-1])
    assert await _events(seen) == []


async def test_a_cancel_ends_a_follower_with_the_cancelled_response(
    fake: FakeUpstream, stack: Stack
) -> None:
    router, sdk = stack
    response_id = (await _broken_off(fake, sdk, "stop"))[0].response.id

    async def follow() -> list[Any]:
        resumed = await sdk.responses.retrieve(response_id, stream=True, starting_after=2)
        return await _events(resumed)

    follower = asyncio.create_task(follow())
    await _watching(router, 1)  # the follower waits for what comes next
    cancelled = await sdk.responses.cancel(response_id)
    assert cancelled.status == "cancelled"
    (last,) = await follower
    assert (last.type, last.sequence_number) == ("response.cancelled", 3)
    # The SDK's event union has no `response.cancelled` (a webhook's name): it comes untyped.
    assert last.response["status"] == "cancelled" and last.response["output"] == []
    await _watching(router, 0)  # the follower's watch went with its call


async def test_a_response_deleted_while_followed_ends_its_follower_with_an_error(
    fake: FakeUpstream, stack: Stack
) -> None:
    _, sdk = stack
    response_id = (await _broken_off(fake, sdk, "gone"))[0].response.id
    resumed = await sdk.responses.retrieve(response_id, stream=True, starting_after=1)
    assert (await anext(resumed)).type == "response.in_progress"
    await sdk.responses.delete(response_id)
    (error,) = await _events(resumed)
    assert (error.type, error.code, error.sequence_number) == ("error", "response_not_found", 3)


async def test_a_caller_that_leaves_frees_its_follower(fake: FakeUpstream, stack: Stack) -> None:
    router, sdk = stack
    await _broken_off(fake, sdk, "bye")  # its stream closed: the caller went away
    await _watching(router, 0)  # its follower went with it
    fake.state.release()
    assert await router.server.jobs.settle(10) == 0  # the job ran on to its end


async def test_resuming_what_was_not_streamed_or_is_unknown_is_refused(stack: Stack) -> None:
    router, sdk = stack
    foreground = await sdk.responses.create(model="chain", input="plain")
    polled = await sdk.responses.create(model="chain", input="polled", background=True)
    await settled(sdk, polled.id, router.server)
    for response_id in (foreground.id, polled.id):
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.responses.retrieve(response_id, stream=True, starting_after=0)
        assert (refused.value.code, refused.value.param) == ("response_not_streamable", "stream")
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve("resp_unknown", stream=True)
    with pytest.raises(openai.BadRequestError) as refused:  # past int64: not a server error
        await sdk.responses.retrieve(polled.id, stream=True, starting_after=2**63)
    assert (refused.value.code, refused.value.param) == ("invalid_value", "starting_after")


async def test_an_unknown_include_is_refused_on_resume_as_on_retrieve(stack: Stack) -> None:
    router, sdk = stack
    started = await _events(
        await sdk.responses.create(model="chain", input="inc", background=True, stream=True)
    )
    response_id = started[0].response.id
    await settled(sdk, response_id, router.server)
    unknown: Any = ["message.output_text.tokens"]
    for stream in (False, True):  # a typo is named, streamed or not, never ignored
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.responses.retrieve(response_id, stream=stream, include=unknown)
        assert (refused.value.code, refused.value.param) == ("invalid_value", "include[0]")


async def test_events_past_the_bound_are_refused_on_resume(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    async for router, sdk in _stack(fake, start_router, start_edge, max_stream_events=16):
        fake.state.set_scenario(Scenario(content="many words " * 20, chunks=40))
        started = await sdk.responses.create(
            model="chain", input="long", background=True, stream=True
        )
        kept = await _events(started)  # as many as kept, then the error saying so
        numbers = [e.sequence_number for e in kept[:-1]]
        assert numbers == list(range(len(numbers))) and 3 <= len(numbers) <= 16
        assert (kept[-1].type, kept[-1].code) == ("error", "stream_not_kept")
        final = await settled(sdk, kept[0].response.id, router.server)
        assert final.status == "completed"  # the response itself is whole
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.responses.retrieve(final.id, stream=True, starting_after=1)
        assert refused.value.code == "stream_not_kept"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_background_response_in_a_conversation_adds_its_items(
    stack: Stack, stream: bool
) -> None:
    router, sdk = stack
    conversation = await sdk.conversations.create(items=[{"role": "user", "content": "I am Ann."}])
    if stream:
        events = await _events(
            await sdk.responses.create(
                model="chain",
                input="Who am I?",
                conversation=conversation.id,
                background=True,
                stream=True,
            )
        )
        assert events[-1].type == "response.completed"
        response_id = events[0].response.id
    else:
        started = await sdk.responses.create(
            model="chain", input="Who am I?", conversation=conversation.id, background=True
        )
        response_id = started.id
    final = await settled(sdk, response_id, router.server)
    assert final.status == "completed"
    items: list[Any] = [i async for i in sdk.conversations.items.list(conversation.id, order="asc")]
    assert [(i.role, i.content[0].text) for i in items] == [
        ("user", "I am Ann."),
        ("user", "Who am I?"),
        ("assistant", final.output_text),
    ]


async def test_a_stream_failing_midway_ends_with_error_then_failed(
    fake: FakeUpstream, stack: Stack
) -> None:
    router, sdk = stack
    fake.state.set_scenario(Scenario(content="one two three four", reset_after_chunks=3))
    stream = await sdk.responses.create(model="chain", input="x", background=True, stream=True)
    events = await _events(stream)
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert any(e.type == "response.output_text.delta" for e in events)  # it had begun
    final = await settled(sdk, events[0].response.id, router.server)
    assert final.status == "failed" and final.to_dict().get("completed_at") is None


async def test_the_same_failure_reads_alike_in_the_foreground_and_the_background(
    fake: FakeUpstream, stack: Stack
) -> None:
    """One taxonomy: an upstream cut mid-stream is the same `error` event (our code,
    `upstream_error`) and the same `response.failed` (OpenAI's `server_error`) whether the
    response streams in the foreground or runs in the background."""
    router, sdk = stack
    ends = []
    for background in (False, True):
        fake.state.set_scenario(Scenario(content="one two three four", reset_after_chunks=3))
        stream = await sdk.responses.create(
            model="chain", input="x", background=background, stream=True
        )
        error, failed = (await _events(stream))[-2:]
        ends.append((error.code, error.message, failed.response.error.to_dict()))
        if background:
            await settled(sdk, failed.response.id, router.server)
    assert ends[0][0] == "upstream_error" and ends[0][2]["code"] == "server_error"
    assert ends[1] == ends[0]


async def test_a_failure_before_any_answer_has_the_foreground_errors_code(
    fake: FakeUpstream, stack: Stack
) -> None:
    """The upstream refusing the call before a word: the foreground stream's HTTP error and the
    background stream's `error` event carry the same code and param, not `invalid_prompt`."""
    router, sdk = stack
    refusal = {"message": "No.", "type": "invalid_request_error", "param": "x", "code": "nope"}
    fake.state.set_scenario(Scenario(status=400, error_body={"error": refusal}))
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chain", input="x", stream=True)
    told = caught.value.body
    assert isinstance(told, dict) and (told["code"], told["param"]) == ("nope", "x")
    stream = await sdk.responses.create(model="chain", input="x", background=True, stream=True)
    error, failed = (await _events(stream))[-2:]
    assert (error.type, error.code, error.param) == ("error", told["code"], told["param"])
    assert error.message == told["message"], (error.message, told)
    assert failed.response.error.code == "invalid_prompt"  # OpenAI's, in the Response
    await settled(sdk, failed.response.id, router.server)


async def test_a_head_of_a_resumed_stream_is_its_headers_alone(
    stack: Stack, fake: FakeUpstream
) -> None:
    """HEAD is GET without the body: of a running response's stream, its headers, and the
    stream closed at once; not the stream relayed to nobody until the response ends, holding
    the connection (the next request on it waited behind) and a follower of its events. The
    response itself runs on."""
    router, sdk = stack
    head = await _broken_off(fake, sdk, "looked at")
    response_id = head[0].response.id
    edge_url = str(sdk.base_url).removesuffix("/v1/")
    one_connection = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=edge_url, timeout=10, limits=one_connection) as http:
        path = f"/v1/responses/{response_id}"
        looked = await http.head(path, params={"stream": "true"})
        assert looked.status_code == 200
        assert looked.headers["content-type"].startswith("text/event-stream")
        assert looked.content == b""
        await _watching(router, 0)  # no follower of its events left behind
        # The same connection answers the next request while the response still runs.
        assert (await http.get("/healthz")).status_code == 200
    fake.state.release()
    done = await settled(sdk, response_id, router.server)
    assert done.status == "completed"
