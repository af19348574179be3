"""What makes two requests the same for the response cache, and where their answer is kept.

The key is a SHA-256 of the calling client, the kind of call (a unary chat, a stream and
embeddings are answered in different shapes, so each is kept apart) and the request's params in
protobuf's deterministic encoding, without the fields that name who asks rather than what is
asked (`user`, `metadata`): two users of one app asking the same question share the answer.
The client is always part of it: an app never reads another's answers.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from google.protobuf.message import Message

from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from router_service.sessions import client_scoped

__all__ = ["Kind", "cache_key", "document_name", "quota_name"]

Kind = Literal["chat", "stream", "embed"]
# Changes when what is kept, or how the key is made, changes: old entries are then never read.
_FORMAT = b"switchboard-cache-1"
_IGNORED = {"chat": ("user", "metadata"), "stream": ("user", "metadata"), "embed": ("user",)}


def cache_key(
    kind: Kind,
    client: str,
    params: chat_pb2.ChatParams | embeddings_pb2.EmbeddingParams,
    generation: str = "",
) -> str:
    """The hex SHA-256 naming one request's answer; `generation` changes with each purge of
    its model (ResponseCache.purge), so that what was kept before is never read again."""
    keyed: Message = params
    ignored = [name for name in _IGNORED[kind] if _present(params, name)]
    if ignored:  # a copy only when there is something to leave out
        copy: Message = type(params)()
        copy.CopyFrom(params)
        for name in ignored:
            copy.ClearField(name)
        keyed = copy
    digest = hashlib.sha256(_FORMAT)
    # Lengths first: no (kind, client) pair runs into the params of another.
    digest.update(f"\x00{kind}\x00{generation}\x00{len(client)}:{client}\x00".encode())
    digest.update(keyed.SerializeToString(deterministic=True))
    return digest.hexdigest()


def document_name(client: str, key: str) -> str:
    # The client's part first: the memory store drops the documents of whoever holds the most.
    return f"cache:{client_scoped(client, '')}:{key}"


def quota_name(client: str) -> str:
    # Hashed like the documents' names: a client's name is configuration, not a key part.
    return "cache-bytes:" + client_scoped(client, "")


def _present(params: Message, name: str) -> bool:
    if name == "metadata":
        return bool(getattr(params, name))
    return params.HasField(name)
