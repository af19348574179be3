"""Keys are shown, logged and stored by fingerprint only."""

from __future__ import annotations

import hashlib


def fingerprint(secret: str) -> str:
    """A short, stable, non-reversible id for a key: `fp_` + 12 hex digits of its SHA-256."""
    return "fp_" + hashlib.sha256(secret.encode()).hexdigest()[:12]
