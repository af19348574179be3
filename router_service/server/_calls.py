"""Who a RouterService call is for, and the chat check every chat-shaped call passes first:
shared by the servicer's handlers (`_router_servicer`, `_responses_servicer`) and the
operator's view of clients (`_clients`)."""

from __future__ import annotations

from typing import Any

from clients import chat_params_to_openai
from clients.switchboard.v1 import chat_pb2
from router_service.auth import Caller, current_caller
from router_service.errors import InvalidRequestError
from router_service.providers._reasoning_object import validated

__all__ = ["client_name", "owner_name", "validate_chat"]


def client_name() -> str:
    """Whose sessions and stored responses the current call reaches (`owner_name`)."""
    return owner_name(current_caller())


def owner_name(caller: Caller | None) -> str:
    """Whose sessions and stored responses a call reaches: callers of one client share theirs;
    unauthenticated callers (open mode) share theirs with each other, never with a client's."""
    return "" if caller is None or caller.anonymous else caller.name


def validate_chat(params: chat_pb2.ChatParams) -> dict[str, Any]:
    """Refuse what no upstream body can be written from before any routing work (a plan, a
    lease): the codec that writes every attempt's body is run once here, so it is one rule;
    OpenRouter's `reasoning` object and Google's `extra_body`, which the router reads, are
    checked with it. Returns the body written (`RequestContext.written`: the first attempt's,
    when it sends these params)."""
    if not params.messages:
        raise InvalidRequestError("`messages` must contain at least one message.", param="messages")
    body = chat_params_to_openai(params)
    extra = params.extra_json
    if "reasoning" in extra or "extra_body" in extra:  # the common case: these tests alone
        validated(body)  # reads it only
    return body
