"""What the upstreams charge: the operator's price list (there is no price feed to ask)."""

from __future__ import annotations

from pydantic import Field

from router_service.config._base import _Strict

__all__ = ["PriceConfig"]

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

    def cost_usd(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """What a call with this usage costs; cached tokens are part of `input_tokens` (as
        OpenAI counts them), charged at their own price when one is set."""
        cached = min(max(cached_tokens, 0), input_tokens)
        cached_price = self.cached_input_per_mtok
        if cached_price is None:
            cached_price = self.input_per_mtok
        spent = (input_tokens - cached) * self.input_per_mtok + cached * cached_price
        return (spent + output_tokens * self.output_per_mtok) / _PER_MTOK
