"""The chat params as each deployment gets them (the attempt's call of it)."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2
from router_service.engine._carried_thinking import carries_thinking, with_carried_thinking
from router_service.engine._custom_tools import emulated, without_carried_reasoning
from router_service.engine._model import Deployment
from router_service.engine._reasoning_off import without_reasoning
from router_service.engine._stops import beyond_cap, has_stops

__all__ = ["params_for"]


def params_for(
    deployment: Deployment, params: chat_pb2.ChatParams
) -> tuple[chat_pb2.ChatParams, frozenset[str]]:
    """The chat params as `deployment` gets them: without the reasoning knob when it takes none,
    with no more stop sequences than it takes, custom tools emulated where it has none (their
    names: its answer's calls to make custom again), a Responses upstream's reasoning items
    for it alone, Claude's signed thinking (carried by a Responses caller) for Claude alone."""
    sent = params if deployment.reasoning else without_reasoning(params)
    if has_stops(sent):
        sent = beyond_cap(sent, deployment.stop_cap, deployment.adapter.refuses_blank_stops)[0]
    if carries_thinking(sent):  # a plain request pays this test alone
        claude = deployment.adapter.takes_thinking_blocks(deployment.upstream_model)
        sent = with_carried_thinking(sent, claude)
    if deployment.api != "responses":
        sent = without_carried_reasoning(sent)
    return (sent, frozenset()) if deployment.takes_custom_tools else emulated(sent)
