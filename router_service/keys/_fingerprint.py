"""Keys are shown, logged and stored by fingerprint only: every key, an upstream's or a
client's, configured or issued, by this one helper (`fingerprint`, or `digest_fingerprint` where
only its SHA-256 is held: a client key configured by `key_sha256`, an issued key's log line)."""

from __future__ import annotations

import hashlib


def fingerprint(secret: str) -> str:
    """A short, stable, non-reversible id for a key: `fp_` + 12 hex digits of its SHA-256."""
    return digest_fingerprint(hashlib.sha256(secret.encode()).hexdigest())


def digest_fingerprint(sha256_hex: str) -> str:
    """`fingerprint` of the key whose hex SHA-256 is `sha256_hex`."""
    return "fp_" + sha256_hex[:12]
