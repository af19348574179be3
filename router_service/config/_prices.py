"""What the upstreams charge: the operator's price list (there is no price feed to ask)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from router_service.config._base import _Strict

__all__ = ["HostedFee", "PriceConfig"]

# OpenAI's hosted tools billed by the call (a code interpreter by its container's session).
HostedFee = Literal["web_search", "file_search", "code_interpreter", "image_generation"]
_Usd = Annotated[float, Field(ge=0, allow_inf_nan=False)]

_PER_MTOK = 1_000_000.0


class PriceConfig(_Strict):
    """USD per million tokens of one deployment (or of a provider's deployments by default)."""

    # Finite: `ge=0` alone lets `.inf` through, and one infinite price makes every sum infinite.
    input_per_mtok: float = Field(
        ge=0, allow_inf_nan=False, description="USD per million prompt tokens."
    )
    output_per_mtok: float = Field(
        ge=0,
        allow_inf_nan=False,
        description="USD per million completion tokens (reasoning included); 0 for embeddings.",
    )
    cached_input_per_mtok: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="USD per million prompt tokens the upstream reports as cached "
        "(usage.prompt_tokens_details.cached_tokens); unset: charged at input_per_mtok.",
    )

    cache_write_per_mtok: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="USD per million prompt tokens the upstream reports as written to its prompt "
        "cache (usage.prompt_tokens_details.cache_write_tokens; Anthropic: 1.25x the input "
        "price for the 5-minute cache); unset: charged at input_per_mtok.",
    )
    cache_write_1h_per_mtok: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="USD per million of those written to the 1-hour cache "
        "(usage.prompt_tokens_details.cache_write_1h_tokens; Anthropic: 2x the input price); "
        "unset: charged at cache_write_per_mtok.",
    )
    tool_calls_usd: dict[HostedFee, _Usd] = Field(
        default_factory=dict,
        description="USD per call of OpenAI's hosted tools an answer made, beside its tokens: "
        "`web_search` (each web_search_call), `file_search` (each file_search_call), "
        "`code_interpreter` (each container session: its calls' distinct container_id), "
        "`image_generation` (each image_generation_call); a tool not named costs nothing.",
    )

    def tool_fees_usd(self, calls: Mapping[HostedFee, int]) -> float:
        """What the hosted tool `calls` cost, beside the tokens."""
        return sum(self.tool_calls_usd.get(name, 0.0) * n for name, n in calls.items())

    def cost_usd(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        *,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
    ) -> float:
        """What a call with this usage costs. Cache reads (`cached_tokens`) and writes
        (`cache_write_tokens`, of which `cache_write_1h_tokens` kept an hour) are parts of
        `input_tokens` (as OpenAI counts them), each charged at its own price when one is set."""
        cached = min(max(cached_tokens, 0), input_tokens)
        written = min(max(cache_write_tokens, 0), input_tokens - cached)
        hour = min(max(cache_write_1h_tokens, 0), written)
        read_price = _or(self.cached_input_per_mtok, self.input_per_mtok)
        write_price = _or(self.cache_write_per_mtok, self.input_per_mtok)
        hour_price = _or(self.cache_write_1h_per_mtok, write_price)
        spent = (
            (input_tokens - cached - written) * self.input_per_mtok
            + cached * read_price
            + (written - hour) * write_price
            + hour * hour_price
        )
        return (spent + output_tokens * self.output_per_mtok) / _PER_MTOK


def _or(price: float | None, fallback: float) -> float:
    return fallback if price is None else price
