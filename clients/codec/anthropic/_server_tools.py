"""Anthropic's server tools (web search, web fetch): tools Anthropic runs itself, whose calls
and results come back as content blocks of their own. Both directions read these words: the
edge's `/v1/messages` (Anthropic caller → OpenAI dialect) and the router's Anthropic provider
(OpenAI dialect → Claude), the chat representation in between carrying Claude's blocks as
opaque data where OpenAI's chat API has no word for them.

Followed:
- Server tools, `server_tool_use` blocks and `pause_turn`:
  https://docs.claude.com/en/docs/agents-and-tools/tool-use/server-tools
- Web search (`web_search_20250305`, `web_search_tool_result`, cited text with
  `web_search_result_location` citations, `usage.server_tool_use.web_search_requests`):
  https://docs.claude.com/en/docs/agents-and-tools/tool-use/web-search-tool
- Web fetch (`web_fetch_20250910`, beta header `web-fetch-2025-09-10`, `web_fetch_tool_result`):
  https://docs.claude.com/en/docs/agents-and-tools/tool-use/web-fetch-tool
- Streaming (`citations_delta`; a server_tool_use's input as `input_json_delta`; a result block
  whole in its `content_block_start`): https://docs.claude.com/en/docs/build-with-claude/streaming
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BETA_KEY",
    "BLOCK_KEY",
    "CITATION_KEY",
    "CONTENT_KEY",
    "SERVER_BLOCKS",
    "STOP_KEY",
    "TEXT_BLOCK_KEY",
    "has_server_blocks",
    "server_tool_family",
    "wanted_betas",
]

JsonObject = dict[str, Any]

# The server tools passed to a Claude deployment, by their versioned type (`web_search_20250305`,
# `web_fetch_20250910`, and later versions of the same tools).
_PASSED = re.compile(r"^(web_search|web_fetch)_\d{8}$")
# The beta flags those tools may need (`web-fetch-2025-09-10`): the only ones forwarded.
_PASSED_BETAS = ("web-search-", "web-fetch-")
# Content blocks of a server tool's call and of its results (and their error forms); the code
# execution's of the versions that filter results with code (web_search_20260209…). Kept as an
# assistant turn gave them when it goes back to Claude (`CONTENT_KEY`), in this order when a
# refusal lists what a turn may hold.
SERVER_BLOCKS = (
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
)

# Where the chat representation carries what OpenAI's chat API cannot say (extra_json keys):
# an assistant message's content blocks exactly as Claude gave them (an answer's, or a turn
# handed back), when they hold server tool blocks or cited text;
CONTENT_KEY = "anthropic_content"
# a choice's stop_reason that no finish_reason says (`pause_turn`);
STOP_KEY = "anthropic_stop_reason"
# the request's beta flags for its server tools (Vertex's body field; a header at Anthropic);
BETA_KEY = "anthropic_beta"
# in a stream's deltas: a server tool block, whole, once it stopped (and on a request's text
# part: the block only Claude reads that the part stands for, `_claude_only`);
BLOCK_KEY = "anthropic_block"
# a text block starting (its start, citations and all) where the answer's text is in blocks;
TEXT_BLOCK_KEY = "anthropic_text_block"
# and one citation of the text block streaming.
CITATION_KEY = "anthropic_citation"


def server_tool_family(tool_type: str) -> str | None:
    """`web_search` or `web_fetch` for a server tool this gateway passes on; else None."""
    matched = _PASSED.match(tool_type)
    return matched.group(1) if matched else None


def has_server_blocks(blocks: Iterable[Any]) -> bool:
    """Whether content blocks hold what only Claude's own blocks say: a server tool's call or
    result, or cited text."""
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") in SERVER_BLOCKS or block.get("citations"):
            return True
    return False


def wanted_betas(headers: Iterable[str], tool_types: Iterable[str]) -> list[str]:
    """The `anthropic-beta` values (comma-separated, in one header or several) that name a
    server tool of the request's (`tool_types`: its tools' types). The rest is not forwarded:
    Claude Code sends flags of its own login, of features this translation does not carry and of
    tools the request does not declare, which a deployment (Vertex AI's runs no web fetch) may
    refuse."""
    families = (server_tool_family(kind) for kind in tool_types)
    prefixes = tuple(f"{family.replace('_', '-')}-" for family in families if family is not None)
    values = (value.strip() for header in headers for value in header.split(","))
    return [value for value in values if prefixes and value.startswith(prefixes)]
