"""What each guarded RPC needs: its scope, the model it names, its token estimate, its checks.

RouterService and AdminService are guarded; everything else (health, reflection) is open. A
RouterService method missing from the table needs the `admin` scope, so a new RPC is closed until
someone decides who may call it (a test checks that every RPC has an entry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from router_service.config import ClientScope
from router_service.engine._tokens import estimate_chat_tokens
from router_service.errors import InvalidRequestError

__all__ = ["ADMIN_SERVICE", "ROUTER_SERVICE", "RULES", "MethodRule", "check_max_tokens", "rule_for"]

ROUTER_SERVICE = "/switchboard.v1.RouterService/"
ADMIN_SERVICE = "/switchboard.v1.AdminService/"
# Roughly four characters per token, as the chat estimate assumes.
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class MethodRule:
    scope: ClientScope
    model: Callable[[Any], str] | None = None  # the model a request names
    tokens: Callable[[Any], int] | None = None  # its cost estimate, for the caller's tpm
    validate: Callable[[Any, int], None] | None = None  # request checks, given the ceiling
    usage: Callable[[Any], int] | None = None  # tokens really used, from a response message
    counted: bool = True  # counts against the caller's rpm


def check_max_tokens(params: chat_pb2.ChatParams, ceiling: int) -> None:
    """`max_tokens` / `max_completion_tokens` between 1 and the router's ceiling."""
    for field in ("max_tokens", "max_completion_tokens"):
        if params.HasField(field):
            value = getattr(params, field)
            if not 1 <= value <= ceiling:
                raise InvalidRequestError(
                    f"Invalid value for '{field}': {value}. It must be between 1 and {ceiling}.",
                    param=field,
                    code="invalid_value",
                )


def embed_tokens(params: embeddings_pb2.EmbeddingParams) -> int:
    which = params.WhichOneof("input")
    if which == "text":
        return len(params.text) // _CHARS_PER_TOKEN + 1
    if which == "texts":
        return sum(len(t) // _CHARS_PER_TOKEN + 1 for t in params.texts.values)
    if which == "tokens":
        return len(params.tokens.values)
    if which == "token_lists":
        return sum(len(tokens.values) for tokens in params.token_lists.lists)
    return 0


def _chat_usage(message: Any) -> int:
    """Usage of a ChatResponse, or of a ChatStream message (its summary); 0 when unknown."""
    if hasattr(message, "completion"):
        return int(message.completion.usage.total_tokens)
    if message.WhichOneof("event") == "summary":
        return int(message.summary.usage.total_tokens)
    return 0


_CHAT = MethodRule(
    scope="chat",
    model=lambda request: request.params.model,
    tokens=lambda request: estimate_chat_tokens(request.params),
    validate=lambda request, ceiling: check_max_tokens(request.params, ceiling),
    usage=_chat_usage,
)

RULES: dict[str, MethodRule] = {
    ROUTER_SERVICE + "Chat": _CHAT,
    ROUTER_SERVICE + "ChatStream": _CHAT,
    ROUTER_SERVICE + "Embed": MethodRule(
        scope="embed",
        model=lambda request: request.params.model,
        tokens=lambda request: embed_tokens(request.params),
        usage=lambda response: int(response.result.usage.total_tokens),
    ),
    ROUTER_SERVICE + "ListModels": MethodRule(scope="models"),
    ROUTER_SERVICE + "PickRoute": MethodRule(
        scope="route",
        model=lambda request: request.model,
        tokens=lambda request: max(0, int(request.estimated_tokens)),
    ),
    # A report of a PickRoute that was already counted.
    ROUTER_SERVICE + "ReportOutcome": MethodRule(scope="route", counted=False),
    # Part of a chat call made over the Responses API (before and after it): that call counts.
    ROUTER_SERVICE + "StoreResponse": MethodRule(scope="chat", counted=False),
    ROUTER_SERVICE + "LoadResponses": MethodRule(scope="chat", counted=False),
    ROUTER_SERVICE + "DeleteResponse": MethodRule(scope="chat", counted=False),
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
