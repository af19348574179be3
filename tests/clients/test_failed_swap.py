"""A channel swap that fails (`use_credentials` given what is no `grpc.ChannelCredentials`)
changes nothing: a TypeError before anything changes, the client still OPENED on the channel
it had (its calls go on there, and that channel closes with the client), not left unopened
with the old channel never closed and every later call failing with grpc's AttributeError."""

from __future__ import annotations

import pytest

from clients import RouterClient, SyncRouterClient
from tests.clients.fake_router import chat_request, serving, stream_request, within
from tests.clients.sync_fake_router import WAIT
from tests.clients.sync_fake_router import serving as sync_serving


async def test_an_async_swap_to_no_credentials_is_refused_and_leaves_the_client_as_it_was() -> None:
    async with serving("a") as (fake, target):
        client = RouterClient(target)
        async with client:
            stream = client.chat_stream(stream_request("hang"))
            assert (await anext(stream)).chunk.choices[0].delta.text == "Hel"
            with pytest.raises(TypeError, match=r"grpc\.ChannelCredentials, not "):
                client.use_credentials("not credentials")
            assert (await client.chat(chat_request())).completion.id == "a"
            assert not fake.cancelled.is_set()
        await within(fake.cancelled)  # the channel it kept closed with the client


def test_a_blocking_swap_to_no_credentials_is_refused_and_leaves_the_client_as_it_was() -> None:
    with sync_serving("a") as (fake, target):
        client = SyncRouterClient(target)
        with client:
            stream = client.chat_stream(stream_request("hang"))
            assert next(stream).chunk.choices[0].delta.text == "Hel"
            with pytest.raises(TypeError, match=r"grpc\.ChannelCredentials, not "):
                client.use_credentials(object())
            assert client.chat(chat_request()).completion.id == "a"
            assert not fake.ended.is_set()
        assert fake.ended.wait(WAIT)  # the channel it kept closed with the client


def test_credentials_refused_on_an_unopened_client_are_not_kept_for_its_first_call() -> None:
    with sync_serving("a") as (_, target):
        client = SyncRouterClient(target)
        with pytest.raises(TypeError, match=r"grpc\.ChannelCredentials, not "):
            client.use_credentials(b"PEM bytes")
        with client:
            assert client.chat(chat_request()).completion.id == "a"
