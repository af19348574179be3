"""Google's Gemini API ⇄ Switchboard's OpenAI dialect, as pure functions.

The HTTP edge's `/v1beta/models/{model}:generateContent` (and its siblings) reads a Gemini body
into the chat request proto (:func:`generate_request_from_gemini`) and writes the chat answer
back as a GenerateContentResponse (:func:`response_to_gemini`) or its stream's chunks
(:class:`ResponseChunks`); embedContent bodies become OpenAI embeddings bodies
(:func:`embeddings_body`); the model list is paged as Gemini's (:func:`models_page`). A
package of its own, imported by name (``from clients.codec.gemini import …``): its names are
Gemini's, not the OpenAI codec's that ``clients`` re-exports. The router's Gemini provider
maps the other way (`router_service/providers/_gemini_map.py`).
"""

from typing import TYPE_CHECKING

from clients._lazy import lazy_names

if TYPE_CHECKING:  # for the type checker: at run time each name is imported on first use
    from clients.codec.gemini._carried import (
        GEMINI_ONLY,
        SAFETY_SETTINGS,
        checked_carried,
        safety_settings,
    )
    from clients.codec.gemini._embed import embeddings_body, embeddings_to_gemini, model_to_gemini
    from clients.codec.gemini._fields import (
        gemini_field,
        gemini_message,
        generate_request_from_gemini,
    )
    from clients.codec.gemini._models import PageAsk, models_page, page_ask
    from clients.codec.gemini._names import camel_case
    from clients.codec.gemini._request import model_name, openai_chat_body
    from clients.codec.gemini._response import (
        BLOCK_REASONS,
        blocked_to_gemini,
        response_to_gemini,
        usage_to_gemini,
    )
    from clients.codec.gemini._stream import ResponseChunks
    from clients.codec.gemini._tables import (
        AUDIO_TYPES,
        CALLING_MODES,
        CONFIG_KEYS,
        FILTERED_FINISH_REASONS,
        FINISH_BY_FINISH_REASON,
        METHODS,
        THINKING_BUDGETS,
        gemini_error,
        gemini_status,
        thought_signature,
    )
    from clients.codec.gemini._thinking import include_thoughts

# Each name's module: imported when the name is first read (clients/_lazy.py).
_WHERE = {
    "AUDIO_TYPES": "_tables",
    "BLOCK_REASONS": "_response",
    "CALLING_MODES": "_tables",
    "CONFIG_KEYS": "_tables",
    "FILTERED_FINISH_REASONS": "_tables",
    "FINISH_BY_FINISH_REASON": "_tables",
    "GEMINI_ONLY": "_carried",
    "METHODS": "_tables",
    "PageAsk": "_models",
    "SAFETY_SETTINGS": "_carried",
    "ResponseChunks": "_stream",
    "THINKING_BUDGETS": "_tables",
    "blocked_to_gemini": "_response",
    "camel_case": "_names",
    "checked_carried": "_carried",
    "embeddings_body": "_embed",
    "embeddings_to_gemini": "_embed",
    "gemini_error": "_tables",
    "gemini_field": "_fields",
    "gemini_message": "_fields",
    "gemini_status": "_tables",
    "generate_request_from_gemini": "_fields",
    "include_thoughts": "_thinking",
    "model_name": "_request",
    "model_to_gemini": "_embed",
    "models_page": "_models",
    "openai_chat_body": "_request",
    "page_ask": "_models",
    "response_to_gemini": "_response",
    "safety_settings": "_carried",
    "thought_signature": "_tables",
    "usage_to_gemini": "_response",
}
# Hidden from type checkers: a module `__getattr__` makes every name it lacks `Any` to them,
# a misspelt import no error; they read the names above instead.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = [
    "AUDIO_TYPES",
    "BLOCK_REASONS",
    "CALLING_MODES",
    "CONFIG_KEYS",
    "FILTERED_FINISH_REASONS",
    "FINISH_BY_FINISH_REASON",
    "GEMINI_ONLY",
    "METHODS",
    "SAFETY_SETTINGS",
    "THINKING_BUDGETS",
    "PageAsk",
    "ResponseChunks",
    "blocked_to_gemini",
    "camel_case",
    "checked_carried",
    "embeddings_body",
    "embeddings_to_gemini",
    "gemini_error",
    "gemini_field",
    "gemini_message",
    "gemini_status",
    "generate_request_from_gemini",
    "include_thoughts",
    "model_name",
    "model_to_gemini",
    "models_page",
    "openai_chat_body",
    "page_ask",
    "response_to_gemini",
    "safety_settings",
    "thought_signature",
    "usage_to_gemini",
]
