"""What the long-held key tests share: a router redacting keys in its answers, and one unary
and one streamed gRPC answer of the same upstream text, to compare."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.router_service.auth.helpers import bearer, chat, chat_stream

__all__ = ["GrpcAnswers", "grpc_answers"]


@dataclass(frozen=True)
class GrpcAnswers:
    """One text's unary answer and its streamed answer, joined, with the stream's chunk count."""

    unary: str
    streamed: str
    chunks: int


async def grpc_answers(fake: FakeUpstream, router: Any, content: str) -> GrpcAnswers:
    """The router's unary and streamed answers to an upstream that answers `content`."""
    fake.state.set_scenario(Scenario(content=content))
    unary = (await router.stub.Chat(chat(), metadata=bearer("sk-bot-key"))).completion
    call = router.stub.ChatStream(chat_stream(), metadata=bearer("sk-bot-key"))
    events = [event async for event in call if event.WhichOneof("event") == "chunk"]
    streamed = "".join(c.delta.text for event in events for c in event.chunk.choices)
    return GrpcAnswers(unary.choices[0].message.text, streamed, len(events))
