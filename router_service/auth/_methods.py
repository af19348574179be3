"""What each guarded RPC needs: its scope, the model it names, its token estimate, its checks.

RouterService and AdminService are guarded; everything else (health, reflection) is open. A
RouterService method missing from the table needs the `admin` scope, so a new RPC is closed until
someone decides who may call it (a test checks that every RPC has an entry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from clients.codec import estimate_prompt_tokens
from clients.switchboard.v1 import media_pb2, routing_pb2
from router_service.auth._bounds import Bounds, check_chat, check_pick, check_rerank
from router_service.auth._client_secrets import client_secret_ask
from router_service.auth._realtime_calls import (
    check_realtime_call,
    check_realtime_open,
    realtime_call_model,
    realtime_call_texts,
)
from router_service.config import ClientScope
from router_service.engine._tokens import (
    estimate_chat_tokens,
    estimate_chunk_tokens,
    estimate_embedding_tokens,
    estimate_media_tokens,
)
from router_service.engine._tool_fees import FeeBound, fee_bound
from router_service.guardrails import (
    TextSlot,
    chat_texts,
    embedding_texts,
    json_item_texts,
    media_texts,
    stored_response_texts,
)
from router_service.sessions import opening_session, pin_session

__all__ = [
    "ADMIN_SERVICE",
    "ROUTER_SERVICE",
    "RULES",
    "MethodRule",
    "rule_for",
]

ROUTER_SERVICE = "/switchboard.v1.RouterService/"
ADMIN_SERVICE = "/switchboard.v1.AdminService/"
# Roughly four characters per token, as the chat estimate assumes.
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class MethodRule:
    scope: ClientScope
    model: Callable[[Any], str] | None = None  # the model a request names
    tokens: Callable[[Any], int] | None = None  # its cost estimate, for the caller's tpm
    validate: Callable[[Any, Bounds], None] | None = None  # request checks, given the bounds
    usage: Callable[[Any], int] | None = None  # tokens really used, from a response message
    # What the message that reported usage says the call cost (RouteInfo.cost_usd), if priced.
    cost: Callable[[Any], float | None] | None = None
    # The hosted tool calls a request may make that a price charges by the call (its money
    # estimate counts their fees).
    fees: Callable[[Any], FeeBound] | None = None
    # A call that reports no usage: the request's prompt tokens, and those each message relays.
    prompt: Callable[[Any], int] | None = None
    relayed: Callable[[Any], int] | None = None
    counted: bool = True  # counts against the caller's rpm
    # Whether a response message says the response cache answered (no tokens were used).
    cached: Callable[[Any], bool] | None = None
    # The RouteInfo a response message carries (a stream's: its route event's), where the
    # caller's rate standing goes; None: this message has none.
    route: Callable[[Any], routing_pb2.RouteInfo | None] | None = None
    # A response with no RouteInfo that still tells the caller its rate standing (PickRoute's).
    standing: Callable[[Any], routing_pb2.RateLimitStatus] | None = None
    # The request's texts that reach an upstream, for the guardrails; None: none to screen.
    texts: Callable[[Any], Iterator[TextSlot]] | None = None
    # Its texts are kept for later calls (stored responses, conversation items): screened as
    # such (Guardrails.screen's `keeping`).
    keeps: bool = False
    # A unary call that holds one of the caller's streams after it returns (a WebRTC call,
    # while its sideband is attached): its handler renews the slot and gives it back.
    holds_stream: bool = False
    # The rule of some requests of the method instead of this one (a Media call's rerank:
    # the `embed` scope and its checks); None: this rule's.
    variant: Callable[[Any], MethodRule | None] | None = None

    def of(self, request: Any) -> MethodRule:
        """The rule that holds for `request`: its variant's, if it has one, else this."""
        if self.variant is None:
            return self
        return self.variant(request) or self


def _check_client_secret(request: Any) -> None:
    client_secret_ask(request)  # raises on a field that is wrong


def _chat_usage(message: Any) -> int:
    """Usage of a ChatResponse, or of a ChatStream or MediaStream message (its summary); 0 when
    unknown."""
    if hasattr(message, "completion"):
        return int(message.completion.usage.total_tokens)
    if message.WhichOneof("event") == "summary":
        return int(message.summary.usage.total_tokens)
    return 0


def _chat_cost(message: Any) -> float | None:
    """The cost on a ChatResponse's route, or a ChatStream summary's (where usage comes)."""
    route = message.route if hasattr(message, "completion") else message.summary.route
    return float(route.cost_usd) if route.HasField("cost_usd") else None


def _route_cost(message: Any) -> float | None:
    route = message.route
    return float(route.cost_usd) if route.HasField("cost_usd") else None


def _relayed(message: Any) -> int:
    """Tokens a Chat answer or ChatStream message carries to its caller (from its size)."""
    if hasattr(message, "completion"):
        size: int = sum(choice.message.ByteSize() for choice in message.completion.choices)
        return -(-size // _CHARS_PER_TOKEN)
    kind = message.WhichOneof("event")
    if kind == "chunk":
        return estimate_chunk_tokens(message.chunk)
    if kind == "chunks":
        return sum(estimate_chunk_tokens(chunk) for chunk in message.chunks.chunks)
    return 0


def _chat_cached(message: Any) -> bool:
    """A ChatResponse, or a ChatStream's route, served by the response cache."""
    route = _chat_route(message)
    return route is not None and bool(route.cache == routing_pb2.CACHE_STATUS_HIT)


def _chat_route(message: Any) -> routing_pb2.RouteInfo | None:
    """A ChatResponse's route, or a ChatStream's: its route event's (sent before the first
    chunk), or the route the message after it carries (`route_on_first_message`)."""
    if hasattr(message, "completion"):
        return message.route  # type: ignore[no-any-return]
    if message.WhichOneof("event") == "route":
        return message.route  # type: ignore[no-any-return]
    return message.first_route if message.HasField("first_route") else None


def _event_route(message: Any) -> routing_pb2.RouteInfo | None:
    """A MediaStream's route event's (sent before the first chunk)."""
    return message.route if message.WhichOneof("event") == "route" else None


def _chat_texts(request: Any) -> Iterator[TextSlot]:
    """A chat call's texts (`request`: a ChatRequest or ChatStreamRequest); a `user` or an
    opening a rule rewrote still names the call's conversation as sent (sessions.pin_session)."""
    named = opening_session(request.routing, request.params)
    yield from chat_texts(request.params)
    pin_session(request.routing, request.params, named)


def _background_texts(request: Any) -> Iterator[TextSlot]:
    """A background response's texts: its chat call's, and its input items kept to be listed."""
    yield from _chat_texts(request.chat)
    yield from json_item_texts(request.input_items_json, "input_items_json")
    yield from json_item_texts(request.conversation_items_json, "conversation_items_json")


def _rerank_variant(request: Any) -> MethodRule | None:
    return _RERANK if request.params.operation == media_pb2.MEDIA_OPERATION_RERANK else None


_MEDIA = MethodRule(
    scope="chat",
    model=lambda request: request.params.model,
    tokens=lambda request: estimate_media_tokens(request.params),
    usage=lambda response: int(response.result.usage.total_tokens),
    cost=_route_cost,
    prompt=lambda request: estimate_media_tokens(request.params),
    route=lambda response: response.route,
    texts=lambda request: media_texts(request.params),
    variant=_rerank_variant,
)
# A rerank: a retrieval call, as embeddings are, so the `embed` scope; its query and documents
# are counted (in tpm, as an embedding's inputs are), screened and checked as its request's.
_RERANK = replace(_MEDIA, scope="embed", validate=check_rerank, variant=None)

_CHAT = MethodRule(
    scope="chat",
    model=lambda request: request.params.model,
    tokens=lambda request: estimate_chat_tokens(request.params),
    validate=check_chat,
    usage=_chat_usage,
    cost=_chat_cost,
    prompt=lambda request: estimate_prompt_tokens(request.params),
    fees=lambda request: fee_bound(request.params),
    relayed=_relayed,
    cached=_chat_cached,
    route=_chat_route,
    texts=_chat_texts,
)

RULES: dict[str, MethodRule] = {
    ROUTER_SERVICE + "Chat": _CHAT,
    ROUTER_SERVICE + "ChatStream": _CHAT,
    ROUTER_SERVICE + "Embed": MethodRule(
        scope="embed",
        model=lambda request: request.params.model,
        tokens=lambda request: estimate_embedding_tokens(request.params),
        usage=lambda response: int(response.result.usage.total_tokens),
        cost=_route_cost,
        # All input: priced as such.
        prompt=lambda request: estimate_embedding_tokens(request.params),
        cached=lambda response: response.route.cache == routing_pb2.CACHE_STATUS_HIT,
        route=lambda response: response.route,
        texts=lambda request: embedding_texts(request.params),
    ),
    # Moderations, images, speech, transcriptions, translations: calls a chat app makes beside
    # its chats, on the same kind of deployments, so the `chat` scope; counted in rpm, and in tpm
    # by their texts' estimate, settled by the usage an image or transcription model reports.
    # A rerank is a retrieval call, as embeddings are: `_RERANK`.
    ROUTER_SERVICE + "Media": _MEDIA,
    # Media answered as it streams: counted as Media; its usage and cost in its summary.
    ROUTER_SERVICE + "MediaStream": MethodRule(
        scope="chat",
        model=lambda request: request.params.model,
        tokens=lambda request: estimate_media_tokens(request.params),
        usage=_chat_usage,
        cost=_chat_cost,
        prompt=lambda request: estimate_media_tokens(request.params),
        route=_event_route,
        texts=lambda request: media_texts(request.params),
    ),
    # A Realtime API session, admitted on its `open` message: counted in rpm when it opens, one
    # of the client's streams while it lasts; its `response.done` usage is settled by the
    # handler (server/_realtime.py), which screens its events' texts as they come.
    ROUTER_SERVICE + "Realtime": MethodRule(
        scope="chat",
        model=lambda request: request.open.model,
        validate=lambda request, bounds: check_realtime_open(request),
        route=lambda message: message.route if message.WhichOneof("message") == "route" else None,
    ),
    # An ephemeral Realtime client secret for a browser: who may open a Realtime session with
    # this model may hand one out (counted in rpm: a write to the store).
    ROUTER_SERVICE + "CreateRealtimeClientSecret": MethodRule(
        scope="chat",
        model=lambda request: client_secret_ask(request).model,
        validate=lambda request, bounds: _check_client_secret(request),
    ),
    ROUTER_SERVICE + "CreateRealtimeCall": MethodRule(
        scope="chat",
        model=realtime_call_model,
        validate=lambda request, bounds: check_realtime_call(request),
        route=lambda response: response.route,
        texts=realtime_call_texts,  # its session config, before it is counted
        holds_stream=True,
    ),
    ROUTER_SERVICE + "HangupRealtimeCall": MethodRule(scope="chat", counted=False),
    ROUTER_SERVICE + "ListModels": MethodRule(scope="models"),
    ROUTER_SERVICE + "PickRoute": MethodRule(
        scope="route",
        model=lambda request: request.model,
        validate=check_pick,  # its estimate, before it is counted
        tokens=lambda request: int(request.estimated_tokens),
        standing=lambda response: response.rate_limit,
    ),
    # A report of a PickRoute that was already counted.
    ROUTER_SERVICE + "ReportOutcome": MethodRule(scope="route", counted=False),
    # Part of a chat call made over the Responses API (before and after it): that call counts.
    # Not free for all that: what a client stores is held to `responses.client_stored_bytes`,
    # and what its loads read at once is bounded (router_service/responses/_stored.py).
    # What it stores is screened too (redacted, never refused): the input is kept redacted.
    ROUTER_SERVICE + "StoreResponse": MethodRule(
        scope="chat",
        counted=False,
        texts=lambda request: stored_response_texts(request.response),
        keeps=True,
    ),
    ROUTER_SERVICE + "LoadResponses": MethodRule(scope="chat", counted=False),
    ROUTER_SERVICE + "DeleteResponse": MethodRule(scope="chat", counted=False),
    # A background response's chat call, counted as one when it starts (its estimate: the job
    # settles no usage); held to `responses.max_background_per_client` besides.
    ROUTER_SERVICE + "StartBackgroundResponse": MethodRule(
        scope="chat",
        model=lambda request: request.chat.params.model,
        tokens=lambda request: estimate_chat_tokens(request.chat.params),
        validate=lambda request, bounds: check_chat(request.chat, bounds),
        prompt=lambda request: estimate_prompt_tokens(request.chat.params),
        fees=lambda request: fee_bound(request.chat.params),
        texts=lambda request: _background_texts(request),
    ),
    ROUTER_SERVICE + "CancelResponse": MethodRule(scope="chat", counted=False),
    # Reads what a streamed background response recorded: its start was counted.
    ROUTER_SERVICE + "ResumeResponse": MethodRule(scope="chat", counted=False),
    # Conversations: kept for a chat app, read and written around its chat calls (which count);
    # bounded by their own byte quota and sizes instead (responses/_conversations.py).
    ROUTER_SERVICE + "CreateConversation": MethodRule(
        scope="chat",
        counted=False,
        texts=lambda request: json_item_texts(request.items_json, "items_json"),
        keeps=True,
    ),
    ROUTER_SERVICE + "LoadConversation": MethodRule(scope="chat", counted=False),
    ROUTER_SERVICE + "UpdateConversation": MethodRule(
        scope="chat",
        counted=False,
        texts=lambda request: json_item_texts(request.add_items_json, "add_items_json"),
        keeps=True,
    ),
    ROUTER_SERVICE + "DeleteConversation": MethodRule(scope="chat", counted=False),
    # Files and batches: bounded by the files' byte quota and sizes (batches/_files.py); a
    # batch's lines are each admitted as the call they are when they run (_batch_lines.py).
    **{
        ROUTER_SERVICE + method: MethodRule(scope="chat", counted=False)
        for method in (
            "UploadFile",
            "ListFiles",
            "GetFile",
            "GetFileContent",
            "DeleteFile",
            "CreateUpload",
            "AddUploadPart",
            "CompleteUpload",
            "CancelUpload",
            "CreateBatch",
            "GetBatch",
            "ListBatches",
            "CancelBatch",
        )
    },
}
_ADMIN = MethodRule(scope="admin")
_UNLISTED = MethodRule(scope="admin")


def rule_for(method: str) -> MethodRule | None:
    """The rule of a full method name (`/switchboard.v1.RouterService/Chat`); None: open."""
    if method.startswith(ADMIN_SERVICE):
        return _ADMIN
    if method.startswith(ROUTER_SERVICE):
        return RULES.get(method, _UNLISTED)
    return None
