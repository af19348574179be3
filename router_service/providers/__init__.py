"""Provider adapters behind one interface (DESIGN.md §1)."""

from router_service.providers._anthropic import AnthropicAdapter
from router_service.providers._azure import AzureOpenAIAdapter
from router_service.providers._base import ChatCall, EmbedCall, ProviderAdapter
from router_service.providers._classify import classify_http_error, retry_after_seconds
from router_service.providers._cloudflare import CloudflareAdapter
from router_service.providers._cohere import CohereAdapter
from router_service.providers._gemini import GeminiAdapter
from router_service.providers._http import create_http_client, map_transport_errors
from router_service.providers._openai import OpenAIAdapter
from router_service.providers._vertex import VertexAdapter

# ProviderConfig.kind → adapter. The router looks adapters up here and never by name elsewhere.
ADAPTERS: dict[str, type[ProviderAdapter]] = {
    adapter.kind: adapter
    for adapter in (
        OpenAIAdapter,
        GeminiAdapter,
        AnthropicAdapter,
        CohereAdapter,
        CloudflareAdapter,
        AzureOpenAIAdapter,
        VertexAdapter,
    )
}

__all__ = [
    "ADAPTERS",
    "AnthropicAdapter",
    "AzureOpenAIAdapter",
    "ChatCall",
    "CloudflareAdapter",
    "CohereAdapter",
    "EmbedCall",
    "GeminiAdapter",
    "OpenAIAdapter",
    "ProviderAdapter",
    "VertexAdapter",
    "classify_http_error",
    "create_http_client",
    "map_transport_errors",
    "retry_after_seconds",
]
