"""Claude's signed thinking carried across Responses turns, in a reasoning item's
``encrypted_content``.

Claude (kind anthropic, bedrock, vertex's Claude) answers its extended thinking with signed
blocks (the chat message's ``thinking_blocks``), and wants them back, first in the assistant
turn that called tools, to go on thinking. A Responses caller (Codex, the Agents SDK) hands back
reasoning items, not chat messages: so when it asked for ``include:
["reasoning.encrypted_content"]`` (:func:`asks_encrypted`), the answer's reasoning item carries
the blocks as this gateway's ``encrypted_content`` (:func:`carrying`): encoded, not encrypted,
as compaction items are (``_responses_compaction``): :data:`THINKING_PREFIX` then the base64url
of ``{"v": 1, "blocks": [...]}``. Claude's signatures protect the blocks themselves; a caller
reading them reads its own model's thinking. A caller that did not ask gets none, as OpenAI
gives encrypted content only when asked.

Fed back, such an item rides on the assistant turn after it as any reasoning item
(``_responses_custom``), checked here first (:func:`thinking_of`: a garbled one is a 400
naming it); the router gives its blocks to a Claude deployment as that turn's
``thinking_blocks`` and to no other (``router_service/engine/_carried_thinking.py``).
"""

from __future__ import annotations

from typing import Any

from clients.codec._json import at
from clients.codec._responses_compaction import decode_ours, encode_ours
from clients.codec._responses_custom import ENCRYPTED
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2

__all__ = [
    "THINKING_BLOCKS",
    "THINKING_PREFIX",
    "asks_encrypted",
    "carrying",
    "check_thinking",
    "encode_thinking",
    "is_thinking",
    "signed_blocks",
    "thinking_of",
]

# The version is in the prefix, as the compaction items' ("sbc1.").
THINKING_PREFIX = "sbt1."
THINKING_BLOCKS = "thinking_blocks"  # the chat message's key (LiteLLM's name)
# A block's type and the string fields it must have.
_FIELDS = {"thinking": ("thinking", "signature"), "redacted_thinking": ("data",)}


def encode_thinking(blocks: list[dict[str, Any]]) -> str:
    """The ``encrypted_content`` that carries `blocks`."""
    return encode_ours(THINKING_PREFIX, {"v": 1, "blocks": blocks})


def is_thinking(content: Any) -> bool:
    """Whether an ``encrypted_content`` is ours, of signed thinking (maybe garbled)."""
    return isinstance(content, str) and content.startswith(THINKING_PREFIX)


def thinking_of(content: str) -> list[dict[str, Any]] | None:
    """The signed blocks an ``encrypted_content`` of :func:`encode_thinking` holds, each a
    ``thinking`` (text and signature) or ``redacted_thinking`` (data) block; None when it is
    not one, or garbled."""
    decoded = decode_ours(THINKING_PREFIX, content)
    blocks = decoded.get("blocks") if decoded is not None else None
    if not isinstance(blocks, list) or not blocks:
        return None
    out = []
    for block in blocks:
        fields = _FIELDS.get(str(block.get("type"))) if isinstance(block, dict) else None
        if fields is None or not all(isinstance(block.get(f), str) for f in fields):
            return None
        out.append({"type": block["type"], **{f: block[f] for f in fields}})
    return out


def check_thinking(item: dict[str, Any], path: str) -> None:
    """Refuse an input reasoning item whose ``encrypted_content`` has our prefix but does not
    hold signed thinking (garbled, cut, edited): InvalidRequestError naming it."""
    content = item.get("encrypted_content")
    if isinstance(content, str) and is_thinking(content) and thinking_of(content) is None:
        raise InvalidRequestError(
            "This reasoning item's 'encrypted_content' looks like this gateway's encoding of "
            "Claude's signed thinking but cannot be read: send the reasoning item back as it "
            "was answered, or leave it out.",
            param=at(path, "encrypted_content"),
        )


def signed_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The signed thinking blocks a chat message (or delta) carries."""
    blocks = message.get(THINKING_BLOCKS)
    if not isinstance(blocks, list):
        return []
    return [b for b in blocks if isinstance(b, dict) and b.get("type") in _FIELDS]


def asks_encrypted(params: chat_pb2.ChatParams) -> bool:
    """Whether the request asked for ``reasoning.encrypted_content`` (``include``)."""
    return bool(params.extra_json) and ENCRYPTED in params.extra_json


def carrying(item: dict[str, Any], blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A reasoning output `item` with `blocks` as its ``encrypted_content`` (none: as it is)."""
    if blocks:
        item["encrypted_content"] = encode_thinking(blocks)
    return item
