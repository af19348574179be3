"""Anthropic's Messages API ⇄ Switchboard's OpenAI dialect, as pure functions.

The HTTP edge's `/v1/messages` reads an Anthropic body into the chat request proto
(:func:`messages_request_from_anthropic`) and writes the chat answer back as Anthropic's message
(:func:`message_to_anthropic`) or its stream events (:class:`MessageEvents`); the router's
Anthropic provider shares the tables (stop reasons, error types). A package of its own,
imported by name (``from clients.codec.anthropic import …``): its names are Anthropic's, not
the OpenAI codec's that ``clients`` re-exports. The server tools' words (web search, web
fetch: the `*_KEY`s where the chat representation carries Claude's own blocks) are shared too.
"""

from typing import TYPE_CHECKING

from clients._lazy import lazy_names

if TYPE_CHECKING:  # for the type checker: at run time each name is imported on first use
    from clients.codec.anthropic._models import ModelsAsk, model_to_anthropic, models_ask
    from clients.codec.anthropic._options import output_format
    from clients.codec.anthropic._request import messages_request_from_anthropic, openai_body
    from clients.codec.anthropic._response import message_to_anthropic
    from clients.codec.anthropic._server_tools import (
        BETA_KEY,
        BLOCK_KEY,
        CITATION_KEY,
        CONTENT_KEY,
        STOP_KEY,
        TEXT_BLOCK_KEY,
        has_server_blocks,
        server_tool_family,
        wanted_betas,
    )
    from clients.codec.anthropic._stream import PING, MessageEvents
    from clients.codec.anthropic._tables import (
        FINISH_BY_STOP_REASON,
        OVERLOADED_STATUS,
        STATUS_BY_ERROR_TYPE,
        TOOL_ERROR_KEY,
        anthropic_error,
        anthropic_error_type,
    )

# Each name's module: imported when the name is first read (clients/_lazy.py).
_WHERE = {
    "BETA_KEY": "_server_tools",
    "BLOCK_KEY": "_server_tools",
    "CITATION_KEY": "_server_tools",
    "CONTENT_KEY": "_server_tools",
    "FINISH_BY_STOP_REASON": "_tables",
    "MessageEvents": "_stream",
    "ModelsAsk": "_models",
    "OVERLOADED_STATUS": "_tables",
    "PING": "_stream",
    "STATUS_BY_ERROR_TYPE": "_tables",
    "STOP_KEY": "_server_tools",
    "TEXT_BLOCK_KEY": "_server_tools",
    "TOOL_ERROR_KEY": "_tables",
    "anthropic_error": "_tables",
    "anthropic_error_type": "_tables",
    "has_server_blocks": "_server_tools",
    "message_to_anthropic": "_response",
    "model_to_anthropic": "_models",
    "output_format": "_options",
    "models_ask": "_models",
    "messages_request_from_anthropic": "_request",
    "openai_body": "_request",
    "server_tool_family": "_server_tools",
    "wanted_betas": "_server_tools",
}
# Hidden from type checkers: a module `__getattr__` makes every name it lacks `Any` to them,
# a misspelt import no error; they read the names above instead.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = [
    "BETA_KEY",
    "BLOCK_KEY",
    "CITATION_KEY",
    "CONTENT_KEY",
    "FINISH_BY_STOP_REASON",
    "OVERLOADED_STATUS",
    "PING",
    "STATUS_BY_ERROR_TYPE",
    "STOP_KEY",
    "TEXT_BLOCK_KEY",
    "TOOL_ERROR_KEY",
    "MessageEvents",
    "ModelsAsk",
    "anthropic_error",
    "anthropic_error_type",
    "has_server_blocks",
    "message_to_anthropic",
    "messages_request_from_anthropic",
    "model_to_anthropic",
    "models_ask",
    "openai_body",
    "output_format",
    "server_tool_family",
    "wanted_betas",
]
