"""The chat params as each deployment gets them (the attempt's call of it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from clients.switchboard.v1 import chat_pb2
from router_service.engine._carried_thinking import carries_thinking, with_carried_thinking
from router_service.engine._custom_stream import RestoredChunks
from router_service.engine._custom_tools import (
    emulated,
    restore_completion,
    without_carried_reasoning,
)
from router_service.engine._legacy_functions import (
    LegacyChunks,
    legacy_completion,
    legacy_emulated,
)
from router_service.engine._model import Deployment
from router_service.engine._reasoning_off import without_reasoning
from router_service.engine._stops import beyond_cap, has_stops

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
        if self.custom:
            chunks = RestoredChunks(chunks, self.custom)
        if self.legacy:
            chunks = LegacyChunks(chunks)
        return chunks


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
