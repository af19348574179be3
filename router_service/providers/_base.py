"""The one provider interface. The router never branches on a provider's name: it calls these
methods, and each adapter maps its wire format and its failures onto our types and Outcomes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Final

import httpx

from clients import MEDIA_PATHS, chat_params_to_openai
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2
from router_service.clock import Clock
from router_service.config import ProviderConfig
from router_service.config._routing import UpstreamApi
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._batched import Answered

# The routing family of OpenAI's hosted tools (engine/_server_tools.py): a deployment on the
# Responses API runs them all; an OpenAI-compatible server, on its chat API, the types its
# config names, each as `openai_hosted:<type>` in its adapter's `server_tools`.
HOSTED_FAMILY: Final = "openai_hosted"

# Yielded by a chat stream (this very object, told apart by identity) for an upstream event that
# has nothing for the caller but shows the upstream at work: a Responses stream's progress while
# a model reasons for minutes before its first words (`response.in_progress`, a reasoning item
# added, `keepalive`); a native stream's event that maps to no chunk (Anthropic's `ping`, a
# thinking block streamed signature-only: `thinking.display: "omitted"`). The engine counts it
# as the upstream's sign of life (its first-chunk and stall windows start again) and never
# relays it, nor counts it as content.
UPSTREAM_ALIVE: Final = chat_pb2.ChatCompletionChunk()


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One attempt's input: the seam takes one dataclass, so fields can be added freely."""

    upstream_model: str
    api_key: str
    params: chat_pb2.ChatParams
    # Seconds this attempt may take in all (the caller's remaining deadline, capped by config).
    timeout_s: float
    # The upstream API the deployment is called with (`api`): chat completions, or the
    # Responses API (OpenAI-format kinds that have it: _responses_map.py).
    api: UpstreamApi = "chat"
    # The model the upstream serves as `upstream_model` (config `base_model`); "": that name.
    base_model: str = ""
    # The OpenAI body of `params` the servicer's check already wrote (`validate_chat`), for
    # the first `openai_body()` only: each use may change the body it gets.
    prepared: list[dict[str, Any]] | None = None
    # The caller's `truncation: auto` (RoutingOptions.truncation): an upstream API that has it
    # (the Responses API) is asked to fit the model's window itself, before the router's cutting.
    truncation: bool = False

    @property
    def named_model(self) -> str:
        """The name what is inferred from a model's name reads (reasoning, efforts, budgets)."""
        return self.base_model or self.upstream_model

    def openai_body(self) -> dict[str, Any]:
        """`params` as an OpenAI chat body (the codec's `chat_params_to_openai`), the body every
        kind's request starts from: the one already written, once, else a new one."""
        prepared = self.prepared
        return prepared.pop() if prepared else chat_params_to_openai(self.params)


@dataclass(frozen=True, slots=True)
class EmbedCall:
    upstream_model: str
    api_key: str
    params: embeddings_pb2.EmbeddingParams
    timeout_s: float
    # Its request's batches answered by an earlier attempt, and the lease its calls count on
    # (an adapter sending the texts as several calls: `_batched.in_order`).
    answered: Answered | None = None


@dataclass(frozen=True, slots=True)
class MediaCall:
    """A moderation, image, speech, transcription, translation or rerank (`params.operation`)."""

    upstream_model: str
    api_key: str
    params: media_pb2.MediaParams
    timeout_s: float
    # The model name the caller asked for (a group's): a rerank's answer names it.
    requested_model: str = ""


@dataclass(frozen=True, slots=True)
class RealtimeCall:
    """A WebRTC Realtime call's offer (`POST /v1/realtime/calls`): the caller's SDP, opaque, and
    the session config sent with it (its `model` the deployment's upstream one)."""

    api_key: str
    sdp: str
    session: dict[str, Any]
    timeout_s: float


@dataclass(frozen=True, slots=True)
class RealtimeCallAnswer:
    """The upstream's answer to an offer: its call id and SDP answer."""

    call_id: str
    sdp: str


@dataclass(slots=True)
class MediaPiece:
    """One piece of a streamed media answer: the chunk the caller gets, and what the router
    reads of it (an event's JSON, its token usage, whether it is the upstream's last event)."""

    chunk: media_pb2.MediaChunk
    event: dict[str, Any] | None = None
    usage: chat_pb2.Usage | None = None
    final: bool = False


def media_unsupported(kind: str, operation: media_pb2.MediaOperation.ValueType) -> UpstreamFailure:
    """The UNSUPPORTED_INPUT of a kind without `operation`'s API: another deployment of the
    group may have it; the caller gets the 400 only when none has."""
    message = f"{kind} offers no /{MEDIA_PATHS.get(operation, 'media')} API"
    error = {"message": message, "type": "invalid_request_error", "param": "model", "code": None}
    return UpstreamFailure(Outcome.UNSUPPORTED_INPUT, message, upstream_error=error)


def _no_realtime_calls(kind: str) -> UpstreamFailure:
    message = f"{kind} offers no WebRTC Realtime calls"
    error = {"message": message, "type": "invalid_request_error", "param": "model", "code": None}
    return UpstreamFailure(Outcome.UNSUPPORTED_INPUT, message, upstream_error=error)


def websocket_url(base_url: str) -> str:
    """`base_url` (http:// or https://) as a WebSocket URL (ws:// or wss://)."""
    base = base_url.rstrip("/")
    return "ws" + base[len("http") :] if base.startswith("http") else base


class ProviderAdapter(ABC):
    """Speaks one provider wire format. Failures are raised as `UpstreamFailure` with an Outcome;
    wrapped errors (HTTP 200 carrying an error) are detected in bodies and in every stream chunk."""

    kind: str
    # How many stop sequences the kind's API takes (OpenAI's 4, Gemini's and Cohere's 5); None:
    # no documented cap. A provider's `max_stop_sequences` overrides it.
    stop_cap_default: int | None = None

    @property
    def takes_custom_tools(self) -> bool:
        """Whether its chat API takes OpenAI's custom (freeform) tools; the router emulates them
        as function tools for the kinds that do not (engine/_custom_tools.py): most kinds."""
        return False

    def takes_thinking_blocks(self, upstream_model: str) -> bool:
        """Whether `upstream_model` here takes Claude's signed thinking back (an assistant
        turn's `thinking_blocks`): Claude's kinds. The signed thinking a Responses caller
        carries (clients/codec/_responses_thinking.py) goes to those alone."""
        return False

    @property
    def tool_types(self) -> frozenset[str] | None:
        """The chat tool types its format carries, besides custom tools (emulated) and
        Anthropic's server tools (routed apart); a request with another is refused naming it,
        never sent without it. None: any, passed on as sent (OpenAI's format)."""
        return frozenset({"function"})

    @property
    def serves_responses_api(self) -> bool:
        """Whether its upstream is OpenAI's own (api.openai.com, Azure OpenAI), which serves
        every chat model on the Responses API too: a chat deployment of it is called there for
        a request with OpenAI's hosted tools (engine/_server_tools.py). Most kinds are not."""
        return False

    @property
    def server_tools(self) -> frozenset[str]:
        """The Anthropic server tools (`web_search`, `web_fetch`) its upstream runs itself: a
        request declaring one is routed to such deployments only. Most kinds run none."""
        return frozenset()

    def __init__(
        self, name: str, config: ProviderConfig, http: httpx.AsyncClient, clock: Clock
    ) -> None:
        self.name = name
        self.config = config
        self.http = http
        self.clock = clock

    @classmethod
    def for_provider(
        cls, name: str, config: ProviderConfig, http: httpx.AsyncClient, clock: Clock
    ) -> ProviderAdapter:
        """The adapter of a provider of this kind: this class, unless the provider's keys call
        for another of the same kind (an azure provider with Entra ID keys). Decided once, at
        build: a call pays nothing for what its provider does not use."""
        return cls(name, config, http, clock)

    def cannot_express(self, params: chat_pb2.ChatParams) -> UpstreamFailure | None:
        """Why this provider's format cannot carry `params` (a content kind it does not take),
        as the UNSUPPORTED_INPUT failure its call would raise; None when it can. Pure and
        without I/O: the attempt loop asks before leasing a key, and passes the deployment
        over. OpenAI's format takes every part as it is: the default."""
        return None

    @property
    def stop_cap(self) -> int | None:
        """The most stop sequences a call may send; the router enforces those past it."""
        configured = self.config.max_stop_sequences
        return self.stop_cap_default if configured is None else configured

    @property
    def refuses_blank_stops(self) -> bool:
        """Whether its API refuses a stop sequence of whitespace alone (Anthropic's: "each stop
        sequence must contain non-whitespace", a 400): the router enforces those."""
        return False

    def asks_stream_usage_of(self, upstream_model: str) -> bool:
        """Whether a stream of `upstream_model` asks its upstream for a usage the upstream
        would not send unasked (OpenAI-format kinds: `stream_options.include_usage`, which the
        router adds): what comes of that alone is not for a caller who did not ask. The other
        kinds report a stream's usage unasked: the default."""
        return False

    def refused_stream_options(self, upstream_model: str) -> bool:
        """Whether this replica learned that `upstream_model`'s upstream refuses the
        `stream_options` the router adds (OpenAI-format kinds; the admin's deployment view)."""
        return False

    def cannot_media(self, operation: media_pb2.MediaOperation.ValueType) -> UpstreamFailure | None:
        """Why this provider cannot serve `operation` (its API has no such endpoint), as the
        UNSUPPORTED_INPUT failure `media` would raise; None when it can. Pure, asked before a
        key is leased (as `cannot_express`). Most kinds have none of them: the default."""
        return media_unsupported(self.kind, operation)

    async def media(self, call: MediaCall) -> media_pb2.MediaResult:
        """One moderation, image, speech, transcription or translation, answered whole."""
        raise media_unsupported(self.kind, call.params.operation)

    def cannot_stream_media(
        self, operation: media_pb2.MediaOperation.ValueType, events: bool
    ) -> UpstreamFailure | None:
        """As `cannot_media`, for a streamed answer; `events`: the caller asked for events
        (`stream: true`, speech's `stream_format: "sse"`), else speech's audio bytes."""
        return self.cannot_media(operation)

    def stream_media(
        self, call: MediaCall
    ) -> AbstractAsyncContextManager[AsyncIterator[MediaPiece]]:
        """Open a streamed media answer. Leaving the context closes the upstream response."""
        raise media_unsupported(self.kind, call.params.operation)

    def realtime_target(
        self, upstream_model: str, api_key: str
    ) -> tuple[str, dict[str, str]] | None:
        """The URL and handshake headers of a Realtime API socket to `upstream_model`; None:
        this kind has no Realtime API (its deployments cannot serve Realtime sessions)."""
        return None

    @property
    def offers_realtime_calls(self) -> bool:
        """Whether this kind takes WebRTC Realtime calls (`create_realtime_call`)."""
        return False

    async def create_realtime_call(self, call: RealtimeCall) -> RealtimeCallAnswer:
        """Post a WebRTC offer; the upstream's call id and SDP answer."""
        raise _no_realtime_calls(self.kind)

    async def hangup_realtime_call(self, call_id: str, api_key: str, timeout_s: float) -> None:
        """End a call `create_realtime_call` made (with the key that made it)."""
        raise _no_realtime_calls(self.kind)

    def realtime_sideband_target(
        self, call_id: str, api_key: str
    ) -> tuple[str, dict[str, str]] | None:
        """The URL and handshake headers of a call's sideband socket (its events, from the
        upstream's side); None: this kind has none."""
        return None

    @abstractmethod
    async def chat(self, call: ChatCall) -> chat_pb2.ChatCompletion:
        """One non-streaming completion."""

    @abstractmethod
    def stream_chat(
        self, call: ChatCall
    ) -> AbstractAsyncContextManager[AsyncIterator[chat_pb2.ChatCompletionChunk]]:
        """Open a stream. Leaving the context closes the upstream response, whatever happened."""

    @abstractmethod
    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        """Embeddings for the call's inputs."""

    @abstractmethod
    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        """Model ids the provider offers to this key (also a cheap probe of the key)."""
