"""The chat params as each deployment gets them (the attempt's call of it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from clients.switchboard.v1 import chat_pb2
from router_service.engine._carried_thinking import carries_thinking, with_carried_thinking
from router_service.engine._custom_stream import CustomCallDeltas
from router_service.engine._custom_tools import (
    emulated,
    restore_completion,
    without_carried_reasoning,
)
from router_service.engine._legacy_functions import (
    LegacyCallDeltas,
    legacy_completion,
    legacy_emulated,
)
from router_service.engine._model import Deployment
from router_service.engine._reasoning_off import without_reasoning
from router_service.engine._stops import beyond_cap, has_stops
from router_service.providers._base import UPSTREAM_ALIVE

__all__ = ["Restoring", "params_for"]


@dataclass(frozen=True, slots=True)
class Restoring:
    """What a deployment's answer to emulated params needs to be in the caller's shape again:
    the emulated custom tools' names (their calls made custom again), and whether legacy
    functions were sent as tools (the calls made legacy `function_call`s again). False: none."""

    custom: frozenset[str] = frozenset()
    legacy: bool = False

    def __bool__(self) -> bool:
        return bool(self.custom) or self.legacy

    def completion(self, completion: chat_pb2.ChatCompletion) -> None:
        """`completion` in the caller's shape, in place."""
        if self.custom:
            restore_completion(completion, self.custom)
        if self.legacy:
            legacy_completion(completion)

    def chunks(
        self, chunks: AsyncIterator[chat_pb2.ChatCompletionChunk]
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        """`chunks` in the caller's shape, as they come."""
        rewrites: list[CustomCallDeltas | LegacyCallDeltas] = []
        if self.custom:
            rewrites.append(CustomCallDeltas(self.custom))
        if self.legacy:  # after the custom calls: a legacy caller's are function calls
            rewrites.append(LegacyCallDeltas())
        return RewrittenChunks(chunks, rewrites) if rewrites else chunks


class RewrittenChunks:
    """`chunks`, each rewritten in place by `rewrites` in turn (a liveness mark passes as is):
    one iterator frame however many restorations an answer needs."""

    def __init__(
        self,
        chunks: AsyncIterator[chat_pb2.ChatCompletionChunk],
        rewrites: list[CustomCallDeltas | LegacyCallDeltas],
    ) -> None:
        self._chunks = chunks
        self._rewrites = rewrites

    def __aiter__(self) -> RewrittenChunks:
        return self

    async def __anext__(self) -> chat_pb2.ChatCompletionChunk:
        chunk = await self._chunks.__anext__()
        if chunk is not UPSTREAM_ALIVE:
            for rewrite in self._rewrites:
                rewrite.rewrite(chunk)
        return chunk


_NOTHING = Restoring()


def params_for(
    deployment: Deployment, params: chat_pb2.ChatParams
) -> tuple[chat_pb2.ChatParams, Restoring]:
    """The chat params as `deployment` gets them: without the reasoning knob when it takes none,
    with no more stop sequences than it takes, custom tools and legacy functions emulated where
    it has none (what its answer's calls need to be the caller's again), a Responses upstream's
    reasoning items for it alone, Claude's signed thinking (carried by a Responses caller) for
    Claude alone."""
    sent = params if deployment.reasoning else without_reasoning(params)
    if has_stops(sent):
        sent = beyond_cap(sent, deployment.stop_cap, deployment.adapter.refuses_blank_stops)[0]
    if carries_thinking(sent):  # a plain request pays this test alone
        claude = deployment.adapter.takes_thinking_blocks(deployment.upstream_model)
        sent = with_carried_thinking(sent, claude)
    if deployment.api != "responses":
        sent = without_carried_reasoning(sent)
    custom: frozenset[str] = frozenset()
    if not deployment.takes_custom_tools:
        sent, custom = emulated(sent)
    legacy = False
    # The text test first: it alone runs for the common request (no legacy functions).
    if "functions" in sent.extra_json and not deployment.takes_legacy_functions:
        sent, legacy = legacy_emulated(sent)
    return sent, (Restoring(custom, legacy) if custom or legacy else _NOTHING)
