"""Builders of the router's protobuf messages for the edge tests."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2 as chat
from clients.switchboard.v1 import router_service_pb2 as rs
from clients.switchboard.v1 import routing_pb2 as routing

DEPLOYMENT = "openai/gpt-4o-mini"


def route(attempts: int = 1, deployment: str = DEPLOYMENT) -> routing.RouteInfo:
    provider, _, model = deployment.partition("/")
    return routing.RouteInfo(
        deployment=deployment,
        provider=provider,
        upstream_model=model,
        requested_model="gpt-4o-mini",
        attempts=[
            routing.Attempt(deployment=deployment, provider=provider, outcome=routing.OUTCOME_OK)
            for _ in range(attempts)
        ],
    )


def completion(text: str) -> chat.ChatCompletion:
    message = chat.ChatMessage(role=chat.ROLE_ASSISTANT, text=text)
    choice = chat.Choice(
        index=0, message=message, finish_reason=chat.FINISH_REASON_STOP, finish_reason_raw="stop"
    )
    usage = chat.Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    return chat.ChatCompletion(
        id="chatcmpl-1", created=1700000000, model="gpt-4o-mini", choices=[choice], usage=usage
    )


def chunk(text: str | None = None, *, finish: bool = False) -> rs.ChatStreamResponse:
    delta = (
        chat.ChatMessage(role=chat.ROLE_ASSISTANT) if text is None else chat.ChatMessage(text=text)
    )
    choice = chat.ChunkChoice(index=0, delta=delta)
    if finish:
        choice.finish_reason = chat.FINISH_REASON_STOP
        choice.finish_reason_raw = "stop"
    return rs.ChatStreamResponse(
        chunk=chat.ChatCompletionChunk(
            id="chatcmpl-1", created=1700000000, model="gpt-4o-mini", choices=[choice]
        )
    )


def usage_chunk(prompt: int = 3, completion_tokens: int = 4) -> rs.ChatStreamResponse:
    usage = chat.Usage(
        prompt_tokens=prompt,
        completion_tokens=completion_tokens,
        total_tokens=prompt + completion_tokens,
    )
    return rs.ChatStreamResponse(
        chunk=chat.ChatCompletionChunk(
            id="chatcmpl-1", created=1700000000, model="gpt-4o-mini", usage=usage
        )
    )


def heartbeat() -> rs.ChatStreamResponse:
    return rs.ChatStreamResponse(heartbeat=rs.Heartbeat(idle_ms=1000))


def route_message(attempts: int = 1) -> rs.ChatStreamResponse:
    return rs.ChatStreamResponse(route=route(attempts))


def summary() -> rs.ChatStreamResponse:
    return rs.ChatStreamResponse(
        summary=rs.StreamSummary(
            usage=chat.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7),
            route=route(),
            time_to_first_token_ms=12.5,
        )
    )


def stream_error(message: str = "upstream stalled") -> rs.ChatStreamResponse:
    return rs.ChatStreamResponse(
        error=rs.StreamError(
            message=message,
            type="stream_timeout",
            code="stalled",
            outcome=routing.OUTCOME_STALLED,
            provider="openai",
        )
    )
