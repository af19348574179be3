"""What admin output shows of a key (`KeySnapshot`), built from what the store read of it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from router_service.keys._health import DisableReason, KeyHealth
from router_service.keys._lease import UpstreamKey
from router_service.state import Reading

__all__ = ["KeySnapshot", "key_snapshot", "manual_note"]

# What a manual disable keeps of the operator's reason (the audit log line quotes as much).
_NOTE_CHARS = 200


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    """What admin output shows of a key: never its secret."""

    key: UpstreamKey
    in_flight: int  # across every replica sharing the store
    disabled_until: float
    disabled_reason: str
    cooling: dict[str, float]
    last_outcome: str
    half_open: bool
    probe_failures: int
    reported: bool
    held_here: int = 0  # of `in_flight`, the leases this process holds
    disabled_note: str = ""  # a manual disable's: why, in the operator's words
    disabled_by: str = ""  # and the client that asked for it


def key_snapshot(
    key: UpstreamKey, in_flight: int, found: Reading, models: Sequence[str], health: KeyHealth
) -> KeySnapshot:
    """`found`: the key's disable deadline then its models' cooldowns, and the disable's
    why and note values. Why comes from the store: whichever replica disabled the key."""
    until = found.deadlines
    cooling = {m: d for m, d in zip(models, until[1:], strict=True) if d}
    why, noted = found.values if until[0] else ("", None)
    reason = (why or health.disabled.value or "unknown") if until[0] else ""
    return KeySnapshot(
        key,
        in_flight,
        until[0],
        reason,
        cooling,
        health.last_outcome.name if health.last_outcome else "",
        health.half_open,
        health.probe_failures,
        health.reported,
        health.in_flight,
        *_note(noted if reason == DisableReason.MANUAL.value else None),
    )


def manual_note(note: str, by: str) -> str:
    """The stored value of a manual disable: the operator's reason (bounded) and who."""
    return json.dumps({"note": note[:_NOTE_CHARS], "by": by})


def _note(noted: str | None) -> tuple[str, str]:
    """(note, by) of a manual disable's stored JSON; empty for none, or one not ours."""
    try:
        parsed = json.loads(noted) if noted else {}
    except ValueError:
        return "", ""
    if not isinstance(parsed, dict):
        return "", ""
    return str(parsed.get("note", "")), str(parsed.get("by", ""))
