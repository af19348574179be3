"""Secrets taken out of what an upstream said (UpstreamFailure.scrub)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["masking", "scrubbed"]

_MASK = "[redacted]"
# A key shown with its middle starred out: a key-like token around a run of asterisks (not the
# sentence's full stop after it).
_MASKED_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\*{3,}(?:[A-Za-z0-9_.*-]*[A-Za-z0-9_*-])?")


def scrubbed(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {k: scrubbed(v, clean) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v, clean) for v in value]
    return value


def masking(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function that masks each of `secrets` in a text, and keys shown half-starred."""
    known = sorted({s for s in secrets if s}, key=len, reverse=True)

    def clean(text: str) -> str:
        for secret in known:
            text = text.replace(secret, _MASK)
        return _MASKED_KEY.sub(_MASK, text) if "***" in text else text

    return clean
