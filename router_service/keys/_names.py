"""The names a key pool keeps its shared facts under in the state store."""

from __future__ import annotations

from collections.abc import Mapping

from router_service.keys._lease import UpstreamKey

__all__ = ["PoolNames"]


class PoolNames:
    """Names of one provider's keys' facts: slots, disables, cooldowns (per key × model),
    throttling (per provider × model)."""

    provider: str
    health: Mapping[str, object]  # by key fingerprint: the pool's keys (`KeyPool.health`)
    # The pool a reload renaming the provider moved its slots to (`StateStore.move_slots`).
    slots_moved_to: PoolNames | None = None

    def slot_names(self, key: UpstreamKey) -> list[str]:
        """Where this pool's slots of `key` are: under its name, or once a reload renamed its
        provider (a lease under way then), its heirs' that kept the key (`keys.carry_slots`
        moves no other). A release goes to each, harmless where the slot is not."""
        names, heir = [self.slot_name(key)], self.slots_moved_to
        while heir is not None and key.fingerprint in heir.health:
            names.append(heir.slot_name(key))
            heir = heir.slots_moved_to
        return names

    def slot_name(self, key: UpstreamKey) -> str:
        return f"lease:{self.provider}:{key.fingerprint}"

    def slot_now(self, key: UpstreamKey) -> str:
        """Where a slot of `key` taken now goes, and its rate windows count: under its name, or
        once a reload renamed its provider, the last heir's to keep the key (a lease under way
        then takes more slots there: `KeyLease.more_calls`)."""
        return self.slot_name(key) if self.slots_moved_to is None else self.slot_names(key)[-1]

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

    def strike_name(self, key: UpstreamKey, model: str) -> str:
        """How many 429s without a hint the key met for `model` in a row (`keys/_strikes.py`)."""
        return f"strikes:{self.provider}:{key.fingerprint}:{model}"

    def cool_name(self, key: UpstreamKey, model: str) -> str:
        return f"cool:{self.provider}:{key.fingerprint}:{model}"

    def deny_name(self, key: UpstreamKey, model: str) -> str:
        """Until when the key's upstream refused it `model` (MODEL_DENIED): set aside as its
        `cool_name` says, and no wait (`keys/_denied.py`)."""
        return f"deny:{self.provider}:{key.fingerprint}:{model}"

    def enabled_clears(self, key: UpstreamKey, model: str, throttled: bool) -> tuple[str, ...]:
        """What an operator's enable of `key` clears for `model`: its cooldown or denial, its 429s
        counted toward throttling the provider, and the provider's throttle when they counted
        toward it (`throttled`: its wait one of those the throttle ends with, over now)."""
        cool, limited = self.cool_name(key, model), self.limited_name(key, model)
        names = (cool, self.deny_name(key, model), limited, self.waited_name(key, model))
        return (*names, self.throttle_name(model)) if throttled else names

    def throttle_name(self, model: str) -> str:
        """The provider throttled for `model`: most of its keys rate-limited for it at once
        (rate limits are per model: OpenAI's, Anthropic's, Gemini's, Groq's)."""
        return f"pcool:{self.provider}:{model}"
