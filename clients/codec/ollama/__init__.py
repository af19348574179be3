"""Ollama's native API ⇄ Switchboard's OpenAI dialect, as pure functions.

The HTTP edge's `/api/chat` and `/api/generate` read an Ollama body into the chat request proto
(:func:`chat_request_from_ollama`) and write the chat answer back as Ollama's answer
(:func:`response_to_ollama`) or its stream's NDJSON objects (:class:`StreamLines`);
`/api/embed` and `/api/embeddings` bodies become OpenAI embeddings bodies (:func:`embed_body`),
and the router's models Ollama's (:func:`model_to_ollama`, :func:`show_model`). A package of
its own, imported by name (``from clients.codec.ollama import …``), as the Gemini one is.
"""

from typing import TYPE_CHECKING

from clients._lazy import lazy_names

if TYPE_CHECKING:  # for the type checker: at run time each name is imported on first use
    from clients.codec.ollama._fields import (
        chat_request_from_ollama,
        ollama_field,
        ollama_message,
    )
    from clients.codec.ollama._models import model_to_ollama, show_model
    from clients.codec.ollama._request import embed_body, is_load, model_of, streams
    from clients.codec.ollama._response import (
        Timing,
        embeddings_to_ollama,
        load_answer,
        response_to_ollama,
    )
    from clients.codec.ollama._stream import StreamLines
    from clients.codec.ollama._tables import (
        DONE_REASONS,
        MANAGEMENT,
        OPTION_KEYS,
        THINK_EFFORTS,
        VERSION,
        ollama_error,
    )

# Each name's module: imported when the name is first read (clients/_lazy.py).
_WHERE = {
    "DONE_REASONS": "_tables",
    "MANAGEMENT": "_tables",
    "OPTION_KEYS": "_tables",
    "StreamLines": "_stream",
    "THINK_EFFORTS": "_tables",
    "Timing": "_response",
    "VERSION": "_tables",
    "chat_request_from_ollama": "_fields",
    "embed_body": "_request",
    "embeddings_to_ollama": "_response",
    "is_load": "_request",
    "load_answer": "_response",
    "model_of": "_request",
    "model_to_ollama": "_models",
    "ollama_error": "_tables",
    "ollama_field": "_fields",
    "ollama_message": "_fields",
    "response_to_ollama": "_response",
    "show_model": "_models",
    "streams": "_request",
}
# Hidden from type checkers: a module `__getattr__` makes every name it lacks `Any` to them,
# a misspelt import no error; they read the names above instead.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = [
    "DONE_REASONS",
    "MANAGEMENT",
    "OPTION_KEYS",
    "THINK_EFFORTS",
    "VERSION",
    "StreamLines",
    "Timing",
    "chat_request_from_ollama",
    "embed_body",
    "embeddings_to_ollama",
    "is_load",
    "load_answer",
    "model_of",
    "model_to_ollama",
    "ollama_error",
    "ollama_field",
    "ollama_message",
    "response_to_ollama",
    "show_model",
    "streams",
]
