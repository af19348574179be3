"""What makes two requests the same for the response cache, and where their answer is kept.

The key is a SHA-256 of the calling client, the kind of call (a unary chat, a stream and
embeddings are answered in different shapes, so each is kept apart) and the request's params in
protobuf's deterministic encoding, without the fields that name who asks rather than what is
asked (`user`, `metadata`, and in `extra_json` `safety_identifier` and `prompt_cache_key`,
OpenAI's successors of `user`): two users of one app asking the same question share the answer.
An embedding's `encoding_format` is left out as well: its vectors are kept once, in the
encoding of the answer its first caller got, and given in the encoding each caller asks
(`cached_as_asked`).
The client is always part of it: an app never reads another's answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import orjson
from google.protobuf.message import Message

from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from router_service.config._secrets import SECRET_HEADER
from router_service.sessions import client_scoped

if TYPE_CHECKING:
    from router_service.engine import Deployment

__all__ = ["Kind", "cache_key", "document_name", "quota_name", "route_digest"]

Kind = Literal["chat", "stream", "embed"]
# Changes when what is kept, or how the key is made, changes: old entries are then never read.
_FORMAT = b"switchboard-cache-1"
# A provider's settings that leave what its upstream is sent, and so its answers, alike.
_NOT_SENT = {
    *("keys", "timeouts", "thread_protection", "max_sessions", "queue_timeout_s", "price"),
    *("authority_host", "entra_scope", "identity_endpoint", "identity_header"),
    *("identity_protocol", "arc_key_directory", "headers"),  # headers: but credentials
}
# An embedding's `encoding_format` too: its vectors are kept once, converted per request.
_IGNORED = {
    "chat": ("user", "metadata"),
    "stream": ("user", "metadata"),
    "embed": ("user", "encoding_format"),
}
# The keys of a chat's `extra_json` that name who asks, as `user` does (OpenAI's successors of
# `user`: an app sets them per end user), not what is asked.
_WHO_EXTRA = ("safety_identifier", "prompt_cache_key")


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
    extra = _asked_extra(params) if isinstance(params, chat_pb2.ChatParams) else None
    if ignored or extra is not None:  # a copy only when there is something to leave out
        copy: Message = type(params)()
        copy.CopyFrom(params)
        for name in ignored:
            copy.ClearField(name)
        if extra is not None:
            copy.extra_json = extra  # type: ignore[attr-defined]
        keyed = copy
    digest = hashlib.sha256(_FORMAT)
    # Lengths first: no (kind, client) pair runs into the params of another.
    digest.update(f"\x00{kind}\x00{generation}\x00{len(client)}:{client}\x00".encode())
    digest.update(keyed.SerializeToString(deterministic=True))
    return digest.hexdigest()


def route_digest(members: Iterable[Deployment]) -> str:
    """Where a model name's calls are answered, in order, and what they are sent: each
    deployment's upstream (wire format, endpoint), model and API, and its provider's settings
    that change the request (`default_max_tokens`, headers but credentials, the fields and
    tools it passes on) and its reasoning knob; not its provider's name nor its keys, limits,
    timeouts or prices. Part of its answers' keys (`ResponseCache.generation`): a reload that
    sends the name elsewhere, or sends it otherwise, is never answered with what the old route
    said; made once per config."""
    digest = hashlib.sha256()
    for member in members:
        c = member.adapter.config
        sent = c.model_dump(mode="json", exclude=_NOT_SENT)
        headers = {name: v for name, v in c.headers.items() if not SECRET_HEADER.search(name)}
        where = (sorted(sent.items()), sorted(headers.items()), c.vertex_express)
        what = (member.upstream_model, member.base_model, member.api, member.reasoning)
        digest.update(f"{(*where, *what)!r}\x00".encode())
    return digest.hexdigest()[:16]


def document_name(client: str, key: str) -> str:
    # The client's part first: the memory store drops the documents of whoever holds the most.
    return f"cache:{client_scoped(client, '')}:{key}"


def quota_name(client: str) -> str:
    # Hashed like the documents' names: a client's name is configuration, not a key part.
    return "cache-bytes:" + client_scoped(client, "")


def _asked_extra(params: chat_pb2.ChatParams) -> str | None:
    """`extra_json` without the keys that name who asks; None when it has none (the common
    case: a substring test, no parse)."""
    extra = params.extra_json
    if not extra or not any(name in extra for name in _WHO_EXTRA):
        return None
    try:
        body = orjson.loads(extra)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not any(name in body for name in _WHO_EXTRA):
        return None
    for name in _WHO_EXTRA:
        body.pop(name, None)
    return orjson.dumps(body).decode() if body else ""


def _present(params: Message, name: str) -> bool:
    if name == "metadata":
        return bool(getattr(params, name))
    return params.HasField(name)
