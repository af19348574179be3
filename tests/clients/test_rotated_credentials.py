"""`RouterClient.use_credentials`: a rotated client certificate takes effect on a new channel for
the calls that follow; calls under way end on the old channel, which closes after them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from clients import RouterClient, RouterError, SyncRouterClient
from clients.switchboard.v1 import admin_service_pb2_grpc, router_service_pb2_grpc
from tests.clients.fake_router import (
    SERVER_OPTIONS,
    FakeRouter,
    chat_request,
    stream_request,
    within,
)
from tests.clients.sync_fake_router import WAIT
from tests.clients.sync_fake_router import serving as sync_serving
from tests.conftest import RouterHandle
from tests.helpers import eventually, serve_grpc
from tests.pki import CA, Issued
from tests.router_service.auth.helpers import chat

# Without grpc's transparent retries a refused handshake is an error at once (the client's
# retry policy would try it for a few seconds).
_NO_RETRIES = [("grpc.enable_retries", 0)]
# No wait for a connection before a chat (`ready_wait_s`, clients/_ready.py): a chat on a new
# channel is still sent on its first connection (gRPC holds it while the channel connects), and
# one whose handshake is refused fails then, not after the whole wait (3 s) for a connection the
# refused certificate never gets.
_NO_READY_WAIT = 0.0


def _client_credentials(ca: CA, client: Issued) -> grpc.ChannelCredentials:
    key, cert = client.pair()
    return grpc.ssl_channel_credentials(ca.issued.cert.read_bytes(), key, cert)


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    return CA(tmp_path, "test-ca")


def _mutual_tls(ca: CA) -> grpc.ServerCredentials:
    server = ca.issue("router", server=True)
    return grpc.ssl_server_credentials(
        [server.pair()], root_certificates=ca.issued.cert.read_bytes(), require_client_auth=True
    )


def _serving(fake: FakeRouter, ca: CA):  # type: ignore[no-untyped-def]
    return serve_grpc(
        (router_service_pb2_grpc.add_RouterServiceServicer_to_server, fake),
        (admin_service_pb2_grpc.add_AdminServiceServicer_to_server, fake),
        options=SERVER_OPTIONS,
        credentials=_mutual_tls(ca),
    )


async def test_calls_after_the_swap_use_the_new_certificate_and_those_under_way_finish(
    ca: CA, tmp_path: Path
) -> None:
    fake = FakeRouter("a")
    rogue = CA(tmp_path, "rogue-ca").issue("intruder", server=False)
    first, second = ca.issue("edge-1", server=False), ca.issue("edge-2", server=False)
    async with _serving(fake, ca) as target:
        client = RouterClient(
            target,
            credentials=_client_credentials(ca, first),
            options=_NO_RETRIES,
            ready_wait_s=_NO_READY_WAIT,
        )
        async with client:
            await client.chat(chat_request())
            stream = client.chat_stream(stream_request("hang"))
            assert (await anext(stream)).chunk.choices[0].delta.text == "Hel"

            # A certificate the router refuses: the next call's new connection fails its
            # handshake, so the call did not go over the first channel's connection.
            client.use_credentials(_client_credentials(ca, rogue))
            with pytest.raises(RouterError) as refused:
                await client.chat(chat_request())
            assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE

            client.use_credentials(_client_credentials(ca, second))
            await client.chat(chat_request())
            assert fake.peers[-1] != fake.peers[0]  # a connection of its own
            async with client.chat_stream(stream_request()) as fresh:  # streams move along too
                assert [event.WhichOneof("event") async for event in fresh][-1] == "summary"
            assert fake.peers[-1] == fake.peers[-2]

            # The stream started on the first channel is still under way, and ends normally.
            assert not fake.cancelled.is_set()
            fake.never.set()
            rest = [event.WhichOneof("event") async for event in stream]
            assert rest == ["chunk", "summary"]


async def test_closing_the_client_ends_calls_left_on_a_replaced_channel(ca: CA) -> None:
    fake = FakeRouter("a")
    first, second = ca.issue("edge-1", server=False), ca.issue("edge-2", server=False)
    async with _serving(fake, ca) as target:
        client = RouterClient(target, credentials=_client_credentials(ca, first))
        async with client:
            hanging = asyncio.create_task(client.chat(chat_request("hang")))
            await within(fake.started)
            client.use_credentials(_client_credentials(ca, second))
            await client.chat(chat_request())
        await within(fake.cancelled)  # closed with the client, not left to its drain period
        with pytest.raises(RouterError) as ended:
            await hanging
        assert ended.value.grpc_code is grpc.StatusCode.CANCELLED
        left = [t for t in asyncio.all_tasks() if t.get_name() == "switchboard-retired-channel"]
        assert left == []


async def test_credentials_given_before_the_first_call_are_the_channels(
    ca: CA, tmp_path: Path
) -> None:
    fake = FakeRouter("a")
    rogue = CA(tmp_path, "rogue-ca").issue("intruder", server=False)
    async with _serving(fake, ca) as target:
        client = RouterClient(
            target, credentials=_client_credentials(ca, rogue), options=_NO_RETRIES
        )
        client.use_credentials(_client_credentials(ca, ca.issue("edge", server=False)))
        async with client:
            assert (await client.chat(chat_request())).completion.id == "a"


def test_the_sync_client_moves_too_and_closes_replaced_channels(ca: CA, tmp_path: Path) -> None:
    rogue = CA(tmp_path, "rogue-ca").issue("intruder", server=False)
    first, second = ca.issue("edge-1", server=False), ca.issue("edge-2", server=False)
    with sync_serving("a", _mutual_tls(ca)) as (fake, target):
        client = SyncRouterClient(
            target,
            credentials=_client_credentials(ca, first),
            options=_NO_RETRIES,
            ready_wait_s=_NO_READY_WAIT,
        )
        with client:
            stream = client.chat_stream(stream_request("hang"))
            assert next(stream).chunk.choices[0].delta.text == "Hel"
            client.use_credentials(_client_credentials(ca, rogue))
            with pytest.raises(RouterError) as refused:
                client.chat(chat_request())
            assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
            client.use_credentials(_client_credentials(ca, second))
            assert client.chat(chat_request()).completion.id == "a"
            # The stream started on the first channel is still under way there.
            assert next(stream).chunk.choices[0].delta.text == "lo"
            assert not fake.ended.is_set()
        assert fake.ended.wait(WAIT)  # closing the client cancelled it, replaced channel and all


async def test_rotating_from_another_thread_is_refused_and_leaves_the_client_as_it_was(
    router: RouterHandle,
) -> None:
    """A certificate watcher's thread called `use_credentials`: grpc.aio could not make the new
    channel there ("There is no current event loop in thread ...", naming nothing of ours), and
    the client was left half-rotated: UNOPENED with the new credentials, so its next call
    opened another channel with them (here refused: TLS to a plaintext router), the first one
    dropped without being closed or drained."""
    client = RouterClient(router.server.address)
    async with client:
        await client.chat(chat())
        with pytest.raises(RuntimeError, match=r"call_soon_threadsafe\(client\.use_credentials"):
            await asyncio.to_thread(client.use_credentials, grpc.ssl_channel_credentials())
        assert (await client.chat(chat())).route.deployment == "alpha/model-a"

    async def unwatched() -> bool:
        return router.server.health_watchers == 0

    await eventually(unwatched, what="the client's channel closed")
