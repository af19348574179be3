"""Attribute names and the GenAI attributes read from our messages.

Names follow OpenTelemetry's GenAI semantic conventions (`gen_ai.*`; `gen_ai.provider.name`
replaced `gen_ai.system`), the general ones (`server.*`, `error.type`), and ours under
`switchboard.*`. Builders run only for recording spans: callers check `span.is_recording()`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

from clients import MEDIA_PATHS
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2
from router_service._ids import shown_id

Attributes = dict[str, AttributeValue]

# GenAI semantic conventions
OPERATION = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
# Parts of gen_ai.usage.input_tokens: read from and written to the upstream's prompt cache.
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_CREATION_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
TOKEN_TYPE = "gen_ai.token.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# Ours
DEPLOYMENT = "switchboard.deployment"
PROVIDER = "switchboard.provider"  # the configured provider (one account), not its kind
MODEL_GROUP = "switchboard.model_group"
POOL = "switchboard.pool"
STRATEGY = "switchboard.routing.strategy"
STICKY_HIT = "switchboard.session.sticky_hit"
STREAM = "switchboard.stream"
OUTCOME = "switchboard.outcome"
ATTEMPTS = "switchboard.attempts"
RETRIES = "switchboard.retries"
FALLBACKS = "switchboard.fallbacks"
ATTEMPT_INDEX = "switchboard.attempt.index"
ATTEMPT_OUTCOME = "switchboard.attempt.outcome"
# An attempt's place in its request's plan (from 1): the deployment at that place of the request
# span's `switchboard.route.plan` event's `switchboard.route.candidates`.
PLAN_STEP = "switchboard.route.plan_step"
KEY_FINGERPRINT = "switchboard.key.fingerprint"
UPSTREAM_STATUS = "switchboard.upstream.status"
COOLDOWN_APPLIED = "switchboard.cooldown.applied"
SESSION_BAN_APPLIED = "switchboard.session.ban_applied"
KEY_STATE = "switchboard.key.state"
SCOPE = "switchboard.cooldown.scope"
CACHE_RESULT = "switchboard.cache.result"
TLS_ROLE = "switchboard.tls.role"
# The calling client's configured name (auth.clients[].name; "anonymous" in open mode): bounded
# by the config, so a metric label; never a key.
CLIENT = "switchboard.client"
# What the response cache did for a request: hit, miss, bypass.
CACHE = "switchboard.cache"
ANONYMOUS_CLIENT = "anonymous"
BUDGET_PERIOD = "switchboard.budget.period"  # day, month
# What a request cost in USD (RouteInfo.cost_usd): absent without a price for its deployment.
COST_USD = "switchboard.cost.usd"

# `gen_ai.provider.name` well-known values by adapter kind.
_PROVIDER_NAMES = {
    "openai": "openai",
    "gemini": "gcp.gemini",
    "anthropic": "anthropic",
    "cohere": "cohere",
    "cloudflare": "cloudflare",
    "azure": "azure.ai.openai",
    "vertex": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
}
_FINISH = {
    chat_pb2.FINISH_REASON_STOP: "stop",
    chat_pb2.FINISH_REASON_LENGTH: "length",
    chat_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls",
    chat_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
    chat_pb2.FINISH_REASON_FUNCTION_CALL: "function_call",
}
# Model groups in metric labels: callers may name anything, labels must stay bounded.
UNRESOLVED = "_unresolved"
# What a caller names (the model it asks for, its stop sequences) goes on spans cut to this many
# bytes, as the edge's `url.path`: one span holding a caller's megabytes would make the export
# batch it travels in too large for the collector, and every other span in it lost.
SHOWN_BYTES = 512
SHOWN_STOPS = 16  # the stop sequences a span names, at most (OpenAI takes 4)


def shown(value: str) -> str:
    """A caller's string as a span says it: whole up to `SHOWN_BYTES`, else cut ("…")."""
    return shown_id(value, SHOWN_BYTES)


def provider_name(kind: str) -> str:
    return _PROVIDER_NAMES.get(kind, kind)


@functools.lru_cache(maxsize=256)
def server_attributes(base_url: str) -> Mapping[str, AttributeValue]:
    """`server.address` / `server.port` of an upstream base URL (never its path or query).
    Parsed once per URL (every attempt span asks); the mapping is shared: read it only."""
    parts = urlsplit(base_url)
    attributes: Attributes = {}
    if parts.hostname:
        attributes[SERVER_ADDRESS] = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        attributes[SERVER_PORT] = port
    return attributes


def chat_request(params: chat_pb2.ChatParams) -> Attributes:
    """The sampling parameters a caller set (proto3 presence: unset stays out)."""
    attributes: Attributes = {}
    if params.HasField("max_completion_tokens"):
        attributes["gen_ai.request.max_tokens"] = params.max_completion_tokens
    elif params.HasField("max_tokens"):
        attributes["gen_ai.request.max_tokens"] = params.max_tokens
    for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty", "seed"):
        if params.HasField(name):
            attributes[f"gen_ai.request.{name}"] = getattr(params, name)
    if params.HasField("n"):
        attributes["gen_ai.request.choice.count"] = params.n
    stop = params.WhichOneof("stop")
    if stop == "stop_text":
        attributes["gen_ai.request.stop_sequences"] = [shown(params.stop_text)]
    elif stop == "stop_list":
        stops = params.stop_list.values[:SHOWN_STOPS]
        attributes["gen_ai.request.stop_sequences"] = [shown(s) for s in stops]
    return attributes


def embed_request(params: embeddings_pb2.EmbeddingParams) -> Attributes:
    if params.HasField("dimensions"):
        return {"gen_ai.embeddings.dimension.count": params.dimensions}
    return {}


def finish_reason(value: chat_pb2.FinishReason.ValueType, raw: str) -> str | None:
    if value in _FINISH:
        return _FINISH[value]
    return raw or None


def usage(value: chat_pb2.Usage) -> Attributes:
    """The token counts; the prompt cache's parts only when the upstream reported some."""
    out: Attributes = {INPUT_TOKENS: value.prompt_tokens, OUTPUT_TOKENS: value.completion_tokens}
    details = value.prompt_tokens_details
    if details.cached_tokens:
        out[CACHE_READ_TOKENS] = details.cached_tokens
    if details.cache_write_tokens:
        out[CACHE_CREATION_TOKENS] = details.cache_write_tokens
    return out


def completion(value: chat_pb2.ChatCompletion) -> Attributes:
    reasons = [finish_reason(c.finish_reason, c.finish_reason_raw) for c in value.choices]
    attributes: Attributes = {
        RESPONSE_ID: value.id,
        RESPONSE_MODEL: value.model,
        FINISH_REASONS: [r for r in reasons if r],
    }
    if value.HasField("usage"):
        attributes |= usage(value.usage)
    return attributes


def media_operation(operation: media_pb2.MediaOperation.ValueType) -> str:
    """A media call's `gen_ai.operation.name`: its OpenAI path, dotted (`images.generations`)."""
    return MEDIA_PATHS.get(operation, "media").replace("/", ".")
