"""RouterClient against real grpc.aio servers on port 0, with a small test servicer
(`fake_router.py`)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import grpc
import pytest

from clients import USE_CLIENT_DEFAULT, RouterClient, RouterError, chat_params_from_openai
from clients.switchboard.v1 import (
    admin_service_pb2,
    router_service_pb2,
)
from tests.clients.fake_router import (
    SERVER_OPTIONS,
    FakeRouter,
    chat_request,
    chunk,
    serving,
    stream_request,
    within,
)
from tests.helpers import refusals_on_another_loop, serve_grpc, tracked


@pytest.fixture
async def router() -> AsyncIterator[tuple[FakeRouter, str]]:
    async with serving("a") as served:
        yield served


async def test_unary_calls(router: tuple[FakeRouter, str]) -> None:
    fake, target = router
    async with RouterClient(target) as client:
        assert (await client.chat(chat_request("gpt"))).completion.model == "gpt"
        assert (
            await client.embed(router_service_pb2.EmbedRequest())
        ) == router_service_pb2.EmbedResponse()
        assert [m.id for m in (await client.list_models()).models] == ["a"]
        keys = await client.list_keys(admin_service_pb2.ListKeysRequest(provider="groq"))
        assert keys.keys[0].provider == "groq"
        enabled = admin_service_pb2.SetKeyEnabledRequest(fingerprint="fp1", enabled=False)
        changed = await client.set_key_enabled(enabled)
        assert changed.key.state == admin_service_pb2.KEY_STATE_DISABLED
        lease = await client.pick_route(router_service_pb2.PickRouteRequest(model="gpt"))
        assert (lease.lease_id, lease.deployment) == ("l1", "gpt")
        report = router_service_pb2.ReportOutcomeRequest(lease_id=lease.lease_id)
        assert (await client.report_outcome(report)).accepted
        stored = router_service_pb2.StoredResponse(id="resp_1")
        req_store = router_service_pb2.StoreResponseRequest(response=stored)
        assert (await client.store_response(req_store)).stored
        req_load = router_service_pb2.LoadResponsesRequest(ids=["resp_1", "resp_2"])
        loaded = await client.load_responses(req_load)
        assert [r.id for r in loaded.responses] == ["resp_1", "resp_2"]
        req_delete = router_service_pb2.DeleteResponseRequest(id="resp_1")
        assert (await client.delete_response(req_delete)).deleted
        conversations = router_service_pb2
        made = await client.create_conversation(conversations.CreateConversationRequest())
        load = conversations.LoadConversationRequest(id=made.conversation.id)
        assert (await client.load_conversation(load)).conversation.id == "conv_1"
        update = conversations.UpdateConversationRequest(id="conv_1")
        assert (await client.update_conversation(update)).conversation.id == "conv_1"
        delete = conversations.DeleteConversationRequest(id="conv_1")
        assert (await client.delete_conversation(delete)).deleted
        stats = await client.get_routing_stats()
        assert stats.deployments[0].deployment == "openai/gpt"
        assert (await client.get_server_info()).replica == fake.name
        assert [c.name for c in (await client.list_clients()).clients] == [fake.name]
        assert (await client.list_jobs(7)).replica == f"{fake.name}/7"
        assert (await client.cancel_client_batch("batch_1", "why")).client == "why"
        issued = await client.issue_client_key("app", "ci", ttl_s=60)
        assert (issued.key, issued.info.client, issued.info.label) == ("ttl=60.0", "app", "ci")
        assert [k.client for k in (await client.list_client_keys()).keys] == [fake.name]
        assert (await client.revoke_client_key("ck_1")).key.id == "ck_1"
        await client.purge_cache("gpt")
    assert fake.purged == ["gpt"]
    assert fake.calls == 23


async def test_background_response_calls(router: tuple[FakeRouter, str]) -> None:
    fake, target = router
    async with RouterClient(target) as client:
        start = router_service_pb2.StartBackgroundResponseRequest(response_json='{"id": "r"}')
        assert (await client.start_background_response(start)).response_json == '{"id": "r"}'
        cancel = router_service_pb2.CancelResponseRequest(id="resp_1")
        assert (await client.cancel_response(cancel)).response_json == '{"id": "resp_1"}'
        resume = router_service_pb2.ResumeResponseRequest(id="resp_1", starting_after=4)
        async with client.resume_response(resume) as events:
            assert [e.event_json async for e in events] == ['{"id": "resp_1", "after": 4}']
    assert fake.calls == 3


async def test_stream_iterates_to_the_end(router: tuple[FakeRouter, str]) -> None:
    _, target = router
    async with RouterClient(target) as client, client.chat_stream(stream_request()) as stream:
        events = [event.WhichOneof("event") async for event in stream]
    assert events == ["chunk", "chunk", "summary"]


async def test_leaving_a_stream_early_cancels_the_router_handler(
    router: tuple[FakeRouter, str],
) -> None:
    fake, target = router
    async with RouterClient(target) as client:
        async with client.chat_stream(stream_request("hang")) as stream:
            first = await anext(stream)
            assert first.chunk.choices[0].delta.text == "Hel"
        await within(fake.cancelled)
        assert [e async for e in stream] == []  # a closed stream is over


async def test_aclose_from_another_task_ends_a_pending_read(router: tuple[FakeRouter, str]) -> None:
    fake, target = router
    async with RouterClient(target) as client:
        stream = client.chat_stream(stream_request("hang"))
        received: list[router_service_pb2.ChatStreamResponse] = []
        both_chunks = asyncio.Event()

        async def consume() -> None:
            async for event in stream:
                received.append(event)
                if len(received) == 2:
                    both_chunks.set()

        consumer = asyncio.create_task(consume())
        await within(both_chunks)  # the consumer now waits in a read the server never answers
        await stream.aclose()
        await asyncio.wait_for(consumer, 15)  # ends quietly: StopAsyncIteration, not CancelledError
        await within(fake.cancelled)


async def test_cancelling_the_caller_task_propagates_and_cancels_the_call(
    router: tuple[FakeRouter, str],
) -> None:
    fake, target = router
    async with RouterClient(target) as client:
        task = asyncio.create_task(client.chat(chat_request("hang")))
        await within(fake.started)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await within(fake.cancelled)


async def test_cancelling_a_stream_reader_propagates_and_cancels_the_call(
    router: tuple[FakeRouter, str],
) -> None:
    fake, target = router
    async with RouterClient(target) as client:
        both_chunks = asyncio.Event()

        async def consume() -> None:
            async with client.chat_stream(stream_request("hang")) as stream:
                received = [await anext(stream), await anext(stream)]
                assert len(received) == 2
                both_chunks.set()
                await anext(stream)

        task = asyncio.create_task(consume())
        await within(both_chunks)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await within(fake.cancelled)


async def test_deadline_becomes_router_error(router: tuple[FakeRouter, str]) -> None:
    fake, target = router
    async with RouterClient(target, default_timeout=30) as client:
        with pytest.raises(RouterError) as info:
            await client.chat(chat_request("hang"), timeout=0.05)
        assert info.value.grpc_code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert info.value.http_status == 504
        assert info.value.reason == "DEADLINE_EXCEEDED"
        await within(fake.cancelled)
        with pytest.raises(RouterError) as info:
            async with client.chat_stream(stream_request("hang"), timeout=0.05) as stream:
                _ = [event async for event in stream]
        assert info.value.grpc_code is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_api_key_and_metadata_arrive(router: tuple[FakeRouter, str]) -> None:
    fake, target = router
    async with RouterClient(target, api_key="sk-client") as client:
        await client.chat(chat_request(), metadata=[("x-session-id", "s1")])
        await client.chat(chat_request(), metadata=[("authorization", "Bearer sk-caller")])
        async with client.chat_stream(stream_request()) as stream:
            _ = [event async for event in stream]
    assert fake.metadata[0]["authorization"] == "Bearer sk-client"
    assert fake.metadata[0]["x-session-id"] == "s1"
    assert fake.metadata[1]["authorization"] == "Bearer sk-caller"  # a forwarded key wins
    assert fake.metadata[2]["authorization"] == "Bearer sk-client"


async def test_round_robin_spreads_calls_over_replicas() -> None:
    async with serving("a") as (a, target_a), serving("b") as (b, target_b):
        async with RouterClient([target_a, target_b]) as client:
            assert client.target.startswith("ipv4:127.0.0.1:")
            answered = set()
            for _ in range(200):  # round robin starts once both subchannels are READY
                answered.add((await client.chat(chat_request())).completion.id)
                if answered == {"a", "b"}:
                    break
        assert answered == {"a", "b"}
        assert a.calls > 0 and b.calls > 0


async def test_dns_target_with_round_robin(router: tuple[FakeRouter, str]) -> None:
    _, target = router
    async with RouterClient(f"dns:///{target}") as client:
        assert (await client.chat(chat_request("x"))).completion.id == "a"


async def test_lifetime(router: tuple[FakeRouter, str]) -> None:
    _, target = router
    client = RouterClient(target)
    assert (await client.list_models()).models  # opens on first use, like httpx
    with pytest.raises(RuntimeError, match="more than once"):
        await client.__aenter__()
    await client.aclose()
    await client.aclose()  # idempotent
    assert client.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.chat(chat_request())
    with pytest.raises(RuntimeError, match="closed"):
        client.chat_stream(stream_request())
    async with RouterClient(target) as fresh:
        pass
    with pytest.raises(RuntimeError):
        async with fresh:
            pass


async def test_a_client_used_on_another_event_loop_says_so_before_any_call(
    router: tuple[FakeRouter, str],
) -> None:
    # A grpc.aio channel is its loop's: used from another (a second `asyncio.run`, a thread's
    # loop) a call failed with asyncio's "attached to a different loop" or "Event loop is
    # closed", and left grpc's call coroutine never awaited (a RuntimeWarning at exit).
    fake, target = router
    async with RouterClient(target) as client:
        await client.list_models()
        calls = fake.calls

        async def read_stream() -> None:
            async with client.chat_stream(stream_request(), timeout=5) as stream:
                await anext(stream)

        refusals = await refusals_on_another_loop(
            lambda: client.chat(chat_request(), timeout=5),
            lambda: client.list_models(timeout=5),
            read_stream,
        )
        assert all("another event loop" in refusal for refusal in refusals), refusals
        assert fake.calls == calls  # none was sent
        assert (await client.chat(chat_request(), timeout=5)).completion.id == "a"


async def test_a_clients_stream_close_and_credentials_used_on_another_loop_say_so(
    router: tuple[FakeRouter, str],
) -> None:
    # Only a call's start was checked: a stream read from another loop met grpc's "attached to
    # a different loop", closed from there it was cancelled off its loop, the client's aclose
    # closed its channel there, and use_credentials moved the client to that loop (its calls
    # on its own loop then failed).
    _, target = router
    async with RouterClient(target) as client:
        async with client.chat_stream(stream_request(), timeout=5) as stream:
            await anext(stream)

            refusals = await refusals_on_another_loop(
                lambda: anext(stream), stream.aclose, client.aclose, lambda: _rotated(client)
            )
            assert all("another event loop" in refusal for refusal in refusals), refusals
            assert (await anext(stream)).chunk.choices[0].delta.text == "lo"  # read on, on its loop
        assert (await client.chat(chat_request(), timeout=5)).completion.id == "a"
        assert not client.is_closed


async def _rotated(client: RouterClient) -> None:
    client.use_credentials(grpc.ssl_channel_credentials())


async def test_unreachable_router_is_a_router_error_once_the_retries_are_spent() -> None:
    async with serving("gone") as (_, target):
        pass  # the server is stopped again: nothing listens on the port
    async with RouterClient(target) as client:
        with pytest.raises(RouterError) as info:
            await client.chat(chat_request(), timeout=30)  # five attempts take under 6 s
    assert info.value.grpc_code is grpc.StatusCode.UNAVAILABLE


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


@pytest.mark.parametrize("service", ["RouterService", "AdminService"])
def test_client_covers_every_rpc(service: str) -> None:
    """A new RPC in the proto must reach RouterClient and SyncRouterClient too."""
    from clients import SyncRouterClient

    pb2 = router_service_pb2 if service == "RouterService" else admin_service_pb2
    methods = pb2.DESCRIPTOR.services_by_name[service].methods
    for method in methods:
        for cls in (RouterClient, SyncRouterClient):
            assert callable(getattr(cls, snake(method.name), None)), (cls, method.name)


def test_timeout_sentinel() -> None:
    assert repr(USE_CLIENT_DEFAULT) == "USE_CLIENT_DEFAULT"


async def test_closing_the_client_under_pending_calls_is_a_cancelled_router_error(
    router: tuple[FakeRouter, str],
) -> None:
    """grpc.aio signals a locally cancelled call with CancelledError; the awaiting task was not
    cancelled, so it gets a RouterError instead (a TaskGroup would swallow a CancelledError)."""
    fake, target = router
    client = RouterClient(target)
    stream = client.chat_stream(stream_request("hang"))
    first_chunk = asyncio.Event()

    async def read_stream() -> None:
        async for _ in stream:
            first_chunk.set()

    reader = asyncio.create_task(read_stream())
    unary = asyncio.create_task(client.chat(chat_request("hang")))
    await within(first_chunk)
    while fake.calls < 2:
        await within(fake.started)
        fake.started.clear()
    await client.aclose()
    for task in (reader, unary):
        with pytest.raises(RouterError) as info:
            await task
        assert info.value.grpc_code is grpc.StatusCode.CANCELLED
        assert info.value.reason == "CANCELLED"


async def test_an_open_stream_does_not_hold_its_request() -> None:
    # A stream is open for as long as the model writes; were the call to keep its request, it
    # would keep the whole prompt per open stream (the edge's streams, most of all). The server
    # here takes the request as bytes, so any ChatStreamRequest left is the client's.
    release = asyncio.Event()

    async def hold(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield chunk("Hel").SerializeToString()
        await release.wait()

    handler = grpc.unary_stream_rpc_method_handler(hold)
    service = grpc.method_handlers_generic_handler(
        "switchboard.v1.RouterService", {"ChatStream": handler}
    )
    marker = "prompt-" + "x" * 4096
    async with serve_grpc(handlers=[service], options=SERVER_OPTIONS) as target:
        try:
            async with RouterClient(target) as client:
                params, _ = chat_params_from_openai(
                    {"model": "m", "messages": [{"role": "user", "content": marker}]}
                )
                opened = client.chat_stream(router_service_pb2.ChatStreamRequest(params=params))
                del params
                async with opened as stream:
                    first = await anext(stream)
                    assert first.chunk.choices[0].delta.text == "Hel"
                    gc.collect()
                    kept = [
                        o
                        for o in tracked(router_service_pb2.ChatStreamRequest)
                        if marker in str(o.params.messages)
                    ]
                    assert kept == []
        finally:
            release.set()
