"""Providers whose Responses API refuses reasoning summaries, learned. The dialect asks for one
(`reasoning.summary: "auto"`) with every effort: the summary is the chat answer's
`reasoning_content`. OpenAI gives summaries only to verified organizations; to any other it
refuses the request (a 400, `param: "reasoning.summary"`, "Your organization must be verified
to generate reasoning summaries"), which no chat caller asked for. The call is then made again
without the summary, and the provider is not asked for one again: its answers come without
`reasoning_content`.

Kept in memory, per adapter (a provider, until a config reload builds it again), as the
`stream_options` refusals are (_stream_options.py): a replica that starts learns it at the cost
of one refused call."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from router_service.errors import UpstreamFailure

__all__ = ["SummaryRefusals", "refuses_summary"]

log = logging.getLogger("switchboard.router")
T = TypeVar("T")


def refuses_summary(failure: UpstreamFailure) -> bool:
    """Whether `failure` is the upstream's refusal of the reasoning summary it was asked for."""
    if failure.upstream_status != 400:
        return False
    error = failure.upstream_error or {}
    return error.get("param") == "reasoning.summary" or (
        "reasoning summar" in str(error.get("message", "")).lower()
    )


class SummaryRefusals:
    """Whether one provider's Responses API still gets asked for reasoning summaries."""

    __slots__ = ("_provider", "asks")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self.asks = True

    async def call(self, send: Callable[[bool], Awaitable[T]]) -> T:
        """`send(summary)`: asking for a summary while the provider takes them; once more
        without one when it refuses it (learned: not asked again)."""
        asks = self.asks
        try:
            return await send(asks)
        except UpstreamFailure as failure:
            if not (asks and refuses_summary(failure)):
                raise
        if self.asks:
            self.asks = False
            log.warning(
                "provider %s refuses reasoning summaries (its organization is not verified): "
                "its Responses API calls no longer ask for one, and answer without "
                "reasoning_content",
                self._provider,
            )
        return await send(False)
