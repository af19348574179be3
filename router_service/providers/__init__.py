"""Provider adapters behind one interface (DESIGN.md §1).

Each kind's adapter is imported when a provider of that kind is configured (or its class is
asked for by name), not at start-up: a router that speaks only OpenAI's format does not hold
Gemini's, Anthropic's, Cohere's, Vertex's or Bedrock's mappings in memory (idle RSS is one of #10's
targets, and every kind added would otherwise raise it for everyone)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from router_service.providers._base import (
    ChatCall,
    EmbedCall,
    MediaCall,
    MediaPiece,
    ProviderAdapter,
    RealtimeCall,
    RealtimeCallAnswer,
)
from router_service.providers._classify import classify_http_error, retry_after_seconds
from router_service.providers._http import (
    create_http_client,
    map_transport_errors,
    reads_cancel_their_task,
)

if TYPE_CHECKING:
    from router_service.providers._anthropic import AnthropicAdapter
    from router_service.providers._azure import AzureEntraAdapter, AzureOpenAIAdapter
    from router_service.providers._bedrock import BedrockAdapter
    from router_service.providers._cloudflare import CloudflareAdapter
    from router_service.providers._cohere import CohereAdapter
    from router_service.providers._gemini import GeminiAdapter
    from router_service.providers._openai import OpenAIAdapter
    from router_service.providers._vertex import VertexAdapter

# ProviderConfig.kind → (module, adapter class). The router looks adapters up in ADAPTERS and
# never by name elsewhere (`for_provider`: a kind's adapter may follow from its keys, azure's
# with Entra ID keys).
_KINDS: dict[str, tuple[str, str]] = {
    "openai": ("_openai", "OpenAIAdapter"),
    "gemini": ("_gemini", "GeminiAdapter"),
    "anthropic": ("_anthropic", "AnthropicAdapter"),
    "cohere": ("_cohere", "CohereAdapter"),
    "cloudflare": ("_cloudflare", "CloudflareAdapter"),
    "azure": ("_azure", "AzureOpenAIAdapter"),
    "vertex": ("_vertex", "VertexAdapter"),
    "bedrock": ("_bedrock", "BedrockAdapter"),
}
_BY_CLASS = {cls: (module, cls) for module, cls in _KINDS.values()}
_BY_CLASS["AzureEntraAdapter"] = ("_azure", "AzureEntraAdapter")  # azure's, with Entra ID keys


def _load(module: str, name: str) -> type[ProviderAdapter]:
    adapter: type[ProviderAdapter] = getattr(import_module(f"{__name__}.{module}"), name)
    return adapter


class _Adapters(Mapping[str, "type[ProviderAdapter]"]):
    """kind → adapter class, each module imported on first use."""

    def __getitem__(self, kind: str) -> type[ProviderAdapter]:
        return _load(*_KINDS[kind])

    def __iter__(self) -> Iterator[str]:
        return iter(_KINDS)

    def __len__(self) -> int:
        return len(_KINDS)


ADAPTERS: Mapping[str, type[ProviderAdapter]] = _Adapters()


def __getattr__(name: str) -> Any:
    """`from router_service.providers import GeminiAdapter` imports that kind's module then."""
    if name in _BY_CLASS:
        return _load(*_BY_CLASS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ADAPTERS",
    "AnthropicAdapter",
    "AzureEntraAdapter",
    "AzureOpenAIAdapter",
    "BedrockAdapter",
    "ChatCall",
    "CloudflareAdapter",
    "CohereAdapter",
    "EmbedCall",
    "GeminiAdapter",
    "MediaCall",
    "MediaPiece",
    "OpenAIAdapter",
    "ProviderAdapter",
    "RealtimeCall",
    "RealtimeCallAnswer",
    "VertexAdapter",
    "classify_http_error",
    "create_http_client",
    "map_transport_errors",
    "reads_cancel_their_task",
    "retry_after_seconds",
]
