"""The texts of a chat request's file parts, each a slot the screen reads and a redact rule
rewrites: a file's `filename` (a Messages API document's `title`), and the text of a text file
(`file_data` a `text/*` data URL of UTF-8 bytes: a Messages API caller's plain-text document
arrives so), which a redact rule's rewrite leaves in the file part encoded again (the Anthropic
provider hands Claude a text document of it). Binary files (PDFs, images, audio), files by URL
or id, and bytes that are not UTF-8 are no text: never scanned."""

from __future__ import annotations

import base64
import binascii

from clients.switchboard.v1 import chat_pb2
from router_service.guardrails._slot import TextSlot, Where
from router_service.providers._mapping import split_data_url

__all__ = ["file_texts"]


class _FileTextSlot(TextSlot):
    """A file's decoded text; a replaced one is written back to `file.file_data` at once, as a
    data URL of the same media type."""

    __slots__ = ("_file", "_media_type")

    def __init__(self, file: chat_pb2.FilePart, media_type: str, text: str, where: Where) -> None:
        super().__init__({"text": text}, "text", where, item=True)
        self._file = file
        self._media_type = media_type

    def replace(self, text: str) -> None:
        super().replace(text)
        data = base64.b64encode(text.encode()).decode()
        self._file.file_data = f"data:{self._media_type};base64,{data}"


def file_texts(part: chat_pb2.ContentPart, where: Where) -> list[TextSlot]:
    """Of the content part `part`, when a file: its `filename` (a Messages API document's
    `title`, which Claude reads too), and its text when it is a text file."""
    if part.WhichOneof("part") != "file":
        return []
    file, at = part.file, (*where, "file")
    slots = [TextSlot(file, "filename", (*at, "filename"))] if file.HasField("filename") else []
    inline = split_data_url(file.file_data) if file.file_data else None
    if inline is None or not inline[0].lower().startswith("text/"):
        return slots
    try:
        text = base64.b64decode(inline[1], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):  # not text: left to the provider's checks
        return slots
    return [*slots, _FileTextSlot(file, inline[0], text, (*at, "file_data"))]
