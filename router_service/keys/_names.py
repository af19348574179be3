"""The names a key pool keeps its shared facts under in the state store."""

from __future__ import annotations

from router_service.keys._lease import UpstreamKey

__all__ = ["PoolNames"]


class PoolNames:
    """Names of one provider's keys' facts: slots, disables, cooldowns (per key × model),
    throttling (per provider × model)."""

    provider: str

    def slot_name(self, key: UpstreamKey) -> str:
        return f"lease:{self.provider}:{key.fingerprint}"

    def off_name(self, key: UpstreamKey) -> str:
        return f"off:{self.provider}:{key.fingerprint}"

    def why_name(self, key: UpstreamKey) -> str:
        """Why the key is off (a DisableReason value), for replicas that did not disable it."""
        return f"offwhy:{self.provider}:{key.fingerprint}"

    def note_name(self, key: UpstreamKey) -> str:
        """Who disabled the key by hand and why (JSON), for every replica's ListKeys."""
        return f"offnote:{self.provider}:{key.fingerprint}"

    def limited_name(self, key: UpstreamKey, model: str) -> str:
        """Until when the key's last 429 for `model` counts towards throttling the provider's
        `model`."""
        return f"r429:{self.provider}:{key.fingerprint}:{model}"

    def waited_name(self, key: UpstreamKey, model: str) -> str:
        """Until when its 429s for `model` told the key to wait: the provider's throttle of
        `model` ends no later than the first of its throttled keys' waits."""
        return f"r429end:{self.provider}:{key.fingerprint}:{model}"

    def cool_name(self, key: UpstreamKey, model: str) -> str:
        return f"cool:{self.provider}:{key.fingerprint}:{model}"

    def throttle_name(self, model: str) -> str:
        """The provider throttled for `model`: most of its keys rate-limited for it at once
        (rate limits are per model: OpenAI's, Anthropic's, Gemini's, Groq's)."""
        return f"pcool:{self.provider}:{model}"
