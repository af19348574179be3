"""OpenAI content parts → Anthropic content blocks (message turns and tool results).

Followed:
- Images (base64 and url sources): https://docs.anthropic.com/en/docs/build-with-claude/vision
- Documents (`document` blocks: a PDF as a base64 or url source, plain text as a text source;
  `title`, `cache_control`, `citations`, `context`): https://platform.claude.com/docs/en/build-with-claude/pdf-support
  and DocumentBlockParam in https://docs.claude.com/en/api/messages. OpenAI `file` parts become
  them. Claude takes no audio: an `input_audio` part is UNSUPPORTED_INPUT (the group's next
  deployment may take it), as is an OpenAI Files API id.
- A block only Claude reads (a custom content document, a `search_result`), whole on the text
  part the Messages API entrance gives for it (`BLOCK_KEY`): sent as it is, instead of the text.
- Prompt caching (`cache_control` on a content block; OpenAI has no such field, callers put it
  where LiteLLM and OpenRouter take it: on a content part or a tool):
  https://docs.claude.com/en/docs/build-with-claude/prompt-caching
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec.anthropic import BLOCK_KEY
from router_service.providers import _mapping as M
from router_service.providers._media import FileInput, decoded_text, file_input

JsonObject = dict[str, Any]

# A document block's own fields that a file part carries as they are (its `title` is the
# file's name): the citations it asks for, and the context given with it.
DOCUMENT_FIELDS = ("citations", "context")


def cached(block: JsonObject, given: Mapping[str, Any]) -> JsonObject:
    """The block with the caller's cache breakpoint, if the part it came from had one."""
    if isinstance(given.get("cache_control"), dict):
        block["cache_control"] = given["cache_control"]
    return block


def content_blocks(content: Any, path: str) -> list[JsonObject]:
    """The blocks of a message's content; `path` names the message in errors."""
    blocks: list[JsonObject] = []
    for j, part in enumerate(M.parts_of(content)):
        kind, at = part.get("type"), f"{path}.content[{j}]"
        if isinstance(part.get(BLOCK_KEY), dict):
            # A block only Claude reads (a custom content document, a search result), which the
            # Messages API entrance carries whole on the text part other deployments read.
            blocks.append(dict(part[BLOCK_KEY]))
        elif kind == "text":
            if M.has_text(part):  # whitespace alone: refused by Claude (M.has_text)
                blocks.append(cached({"type": "text", "text": part["text"]}, part))
        elif kind == "image_url":
            blocks.append(cached(_image(M.image_url(part)), part))
        elif kind == "file":
            document = _document(file_input(part, "anthropic", at), at)
            # A Messages API caller's citations config and context, where its entrance put them.
            document.update({key: part[key] for key in DOCUMENT_FIELDS if key in part})
            blocks.append(cached(document, part))
        elif kind == "input_audio":
            raise M.unsupported("anthropic takes no audio: Claude has no audio input", at)
        else:
            raise M.unsupported(f"anthropic does not take {kind!r} content parts", at)
    return blocks


def _document(file: FileInput, path: str) -> JsonObject:
    """A document block: Claude reads PDFs (base64 or by URL) and plain text (given inline)."""
    source: JsonObject
    if file.media_type == "application/pdf" and file.url:
        source = {"type": "url", "url": file.url}
    elif file.media_type == "application/pdf":
        source = {"type": "base64", "media_type": file.media_type, "data": file.data}
    elif file.media_type == "text/plain" and file.data:
        source = {"type": "text", "media_type": "text/plain", "data": decoded_text(file, path)}
    else:
        given = f"{file.media_type!r}" + (" by URL" if file.url else "")
        raise M.unsupported(
            "anthropic takes PDFs (base64 data or a URL) and plain text (base64 data) as "
            f"documents, not {given}",
            f"{path}.file",
        )
    block: JsonObject = {"type": "document", "source": source}
    if file.filename:
        block["title"] = file.filename
    return block


def _image(url: str) -> JsonObject:
    inline = M.split_data_url(url)
    if inline is not None:
        media_type, data = inline
        source = {"type": "base64", "media_type": media_type, "data": data}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": url}}
