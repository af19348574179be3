"""Compaction items (``{"type": "compaction", "encrypted_content"}``): the summary of an earlier
conversation that ``POST /v1/responses/compact`` answers, fed back in a later ``input``.

This gateway's ``encrypted_content`` is encoded, not encrypted: :data:`COMPACTION_PREFIX` then
the base64url (unpadded) of a small JSON object, ``{"v": 1, "summary": "…"}``. The caller already
holds the conversation it summarises, so there is nothing to hide from it; and one it forges
gains nothing it could not send as a message. Self-contained: nothing is kept server-side. An
item with OpenAI's real (encrypted) content cannot be read here and is refused by its path.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from clients.codec._json import at, expect_str
from clients.errors import InvalidRequestError

__all__ = [
    "COMPACTION_PREFIX",
    "SUMMARY_HEADING",
    "compaction_message",
    "compaction_summary",
    "decode_ours",
    "encode_compaction",
    "encode_ours",
]

# The version is in the prefix: a later encoding gets "sbc2.", and this one stays readable.
COMPACTION_PREFIX = "sbc1."
# What the summary is introduced with where the compaction item stood.
SUMMARY_HEADING = "Summary of the earlier conversation:"


def encode_ours(prefix: str, payload: dict[str, Any]) -> str:
    """An ``encrypted_content`` of this gateway's: `prefix`, then the base64url (unpadded) of
    `payload` as JSON (compaction items here; Claude's signed thinking, _responses_thinking)."""
    return prefix + base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_ours(prefix: str, content: str) -> dict[str, Any] | None:
    """The payload of an ``encrypted_content`` :func:`encode_ours` made with `prefix`, version
    1 (``"v": 1``); None for any other (another prefix, garbled, another version)."""
    if not content.startswith(prefix):
        return None
    encoded = content[len(prefix) :]
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError):
        return None
    return decoded if isinstance(decoded, dict) and decoded.get("v") == 1 else None


def encode_compaction(summary: str) -> str:
    """A compaction item's ``encrypted_content`` holding `summary`."""
    return encode_ours(COMPACTION_PREFIX, {"v": 1, "summary": summary})


def compaction_message(item: dict[str, Any], path: str) -> dict[str, Any]:
    """The chat message a compaction item stands for: a system message with its summary, in
    the item's place. Raises InvalidRequestError (naming `path`'s ``encrypted_content``) for
    content this gateway did not make."""
    where = at(path, "encrypted_content")
    content = expect_str(item.get("encrypted_content"), where)
    summary = compaction_summary(content)
    if summary is None:
        raise InvalidRequestError(
            "This compaction item was not made by this gateway: its 'encrypted_content' cannot "
            "be read here (OpenAI's compactions are encrypted for OpenAI alone). Compact the "
            "conversation with this gateway's /v1/responses/compact, or send the conversation "
            "itself.",
            param=where,
        )
    return {"role": "system", "content": f"{SUMMARY_HEADING}\n{summary}"}


def compaction_summary(content: str) -> str | None:
    """The summary an ``encrypted_content`` this gateway made holds; None for any other."""
    decoded = decode_ours(COMPACTION_PREFIX, content)
    summary = decoded.get("summary") if decoded is not None else None
    return summary if isinstance(summary, str) else None
