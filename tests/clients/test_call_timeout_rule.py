"""A call's `timeout=` follows the client's `default_timeout=` rule: seconds above 0, `None`
or `math.inf`. What is no number (`True`, which grpc read as 1 s; a str) is a TypeError, and 0,
a negative number or NaN a ValueError, naming `timeout`, before anything is sent (0 was a race
between the answer and a deadline already due; `True`, a 1 s deadline), unary and stream, in
both clients, the first call (names not looked up yet) too."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from clients import RouterClient, SyncRouterClient
from tests.clients.fake_router import chat_request, serving, stream_request
from tests.clients.sync_fake_router import serving as sync_serving

_NO_NUMBER = [True, "5"]
_NOT_ABOVE_0 = [0, 0.0, -1, math.nan]
_NO_NUMBER_SAID = "^" + re.escape("timeout must be seconds or None, not ")
_NOT_ABOVE_0_SAID = "^" + re.escape("timeout must be > 0 seconds or None, not ")


async def test_an_async_call_refuses_a_timeout_that_is_no_number_of_seconds() -> None:
    async with serving("a") as (fake, target):
        async with RouterClient(target) as client:
            for timeout in _NO_NUMBER:
                with pytest.raises(TypeError, match=_NO_NUMBER_SAID):
                    await client.chat(chat_request(), timeout=timeout)  # type: ignore[arg-type]
                with pytest.raises(TypeError, match=_NO_NUMBER_SAID):
                    client.chat_stream(stream_request(), timeout=timeout)  # type: ignore[arg-type]
            for timeout in _NOT_ABOVE_0:
                with pytest.raises(ValueError, match=_NOT_ABOVE_0_SAID):
                    await client.chat(chat_request(), timeout=timeout)
                with pytest.raises(ValueError, match=_NOT_ABOVE_0_SAID):
                    client.chat_stream(stream_request(), timeout=timeout)
            assert fake.peers == []  # nothing was sent
            await client.chat(chat_request(), timeout=math.inf)  # no deadline, as None
            assert len(fake.peers) == 1


async def test_an_async_first_stream_refuses_such_a_timeout_before_its_lookup() -> None:
    async with serving("a", host="localhost") as (_, target):
        async with RouterClient(target) as client:  # a name: looked up at the first call
            with pytest.raises(ValueError, match=_NOT_ABOVE_0_SAID):
                client.chat_stream(stream_request(), timeout=0)
            with pytest.raises(TypeError, match=_NO_NUMBER_SAID):
                client.chat_stream(stream_request(), timeout=True)


def test_a_blocking_call_refuses_such_a_timeout() -> None:
    with sync_serving("a") as (_, target):
        with SyncRouterClient(target) as client:
            timeout: Any
            for timeout in _NO_NUMBER:
                with pytest.raises(TypeError, match=_NO_NUMBER_SAID):
                    client.chat(chat_request(), timeout=timeout)
                with pytest.raises(TypeError, match=_NO_NUMBER_SAID):
                    client.chat_stream(stream_request(), timeout=timeout)
            for timeout in _NOT_ABOVE_0:
                with pytest.raises(ValueError, match=_NOT_ABOVE_0_SAID):
                    client.chat(chat_request(), timeout=timeout)
                with pytest.raises(ValueError, match=_NOT_ABOVE_0_SAID):
                    client.chat_stream(stream_request(), timeout=timeout)
            assert client.chat(chat_request(), timeout=math.inf).completion.id == "a"
