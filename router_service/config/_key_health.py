"""How keys and deployments fall ill and recover: cooldowns and key health (every provider)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from router_service.config._base import _Strict

__all__ = ["CooldownsConfig", "KeyHealthConfig"]


class CooldownsConfig(_Strict):
    transient_s: float = Field(
        default=15.0,
        gt=0,
        description="Global cooldown of a deployment after a 5xx / connect failure (longer when "
        "a 5xx's Retry-After asks, up to server_retry_after_max_s).",
    )
    rate_limit_backoff_s: float = Field(
        default=5.0, gt=0, description="Key × model cooldown after a 429 without Retry-After."
    )
    quota_disable_s: float = Field(
        default=3600.0, gt=0, description="How long a key with exhausted quota stays disabled."
    )
    auth_disable_s: float = Field(
        default=86400.0, gt=0, description="How long a key with invalid credentials stays disabled."
    )
    retry_after_max_s: float = Field(
        default=86400.0,
        gt=0,
        description="Ceiling of an upstream's wait hint (Retry-After, retry-after-ms, "
        "x-ratelimit-reset-*, Gemini's retryDelay, ReportOutcome.retry_after_s): a longer one "
        "cools the key × model for this long, and a caller's retry hint says no more.",
    )

    server_retry_after_max_s: float = Field(
        default=300.0,
        gt=0,
        description="Ceiling of a server failure's wait hint (a 503's or a 529's Retry-After): "
        "it cools the whole deployment for everyone, so one odd header (a proxy's maintenance "
        "page saying an hour) must not take it out for long.",
    )

    def deployment_cooldown_s(self, retry_after_s: float | None) -> float:
        """How long a failure cools its deployment for everyone: `transient_s`, or longer when
        the upstream said when it is back (a 503's or a 529's Retry-After, capped at
        `server_retry_after_max_s`). Never shorter: `Retry-After: 0` would leave a failing
        deployment in every request's way."""
        if retry_after_s is None:
            return self.transient_s
        return max(self.transient_s, min(retry_after_s, self.server_retry_after_max_s))


class KeyHealthConfig(_Strict):
    """How keys fall ill and recover (every provider)."""

    backoff_max_s: float = Field(
        default=300.0, gt=0, description="Ceiling of a 429 backoff without Retry-After."
    )
    provider_throttle_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of a provider's keys rate-limited for one model within the window "
        "that cools the provider for that model (the account's limit for it reached; other "
        "models have limits of their own). Needs at least two keys.",
    )
    provider_throttle_window_s: float = Field(default=10.0, gt=0)
    probe: Literal["models", "completion"] = Field(
        default="models",
        description="How a disabled key is probed: list models, or a 1-token completion.",
    )
    probe_model: str | None = Field(
        default=None,
        description="Model for `completion` probes (else its provider's first deployment's).",
    )
    probe_initial_s: float = Field(default=30.0, gt=0, description="First probe after disable.")
    probe_max_s: float = Field(default=3600.0, gt=0, description="Probe backoff ceiling.")
    probe_concurrency: int = Field(default=4, ge=1)
    probe_interval_s: float = Field(default=5.0, gt=0, description="How often the prober looks.")
    half_open_successes: int = Field(
        default=3,
        ge=1,
        description="Real requests a recovered key serves one at a time before it is trusted.",
    )
