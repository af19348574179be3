"""Routers with client keys, and calls that carry them."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import hash_key
from tests.conftest import base_config


def client(name: str, key: str, **fields: Any) -> dict[str, Any]:
    """A client entry as the config file has it: by hash (the plaintext is never configured)."""
    return {"name": name, "key_sha256": hash_key(key), **fields}


def guarded_config(fake_url: str, *clients: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return base_config(fake_url, auth={"clients": list(clients)}, **sections)


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def chat(model: str = "chain", text: str = "hello", **params: Any) -> pb.ChatRequest:
    return pb.ChatRequest(
        params=chat_pb2.ChatParams(
            model=model,
            messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)],
            **params,
        )
    )


def chat_stream(model: str = "chain", text: str = "hello", **params: Any) -> pb.ChatStreamRequest:
    return pb.ChatStreamRequest(params=chat(model, text, **params).params)


async def chat_failure(stub: Any, streamed: bool) -> grpc.aio.AioRpcError:
    """The error a `chat()` (or, `streamed`, a `chat_stream()` read to its end) fails with."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if streamed:
            async for _ in stub.ChatStream(chat_stream()):
                pass
        else:
            await stub.Chat(chat())
    return caught.value
