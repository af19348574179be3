"""Which config file the router serves, by digest: taken before the file is read at start (a
change written meanwhile is then reloaded) and published as `switchboard.config.info`. Only
the standard library and the telemetry handle: `switchboard router` takes the digest before
the checks that can refuse its start, so it loads nothing of the server to take it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from router_service.telemetry import current

__all__ = ["digest_of", "file_digest", "serving_file"]


def serving_file(path: str | Path, digest: str | None = None) -> None:
    """Publish which file the router serves (`switchboard.config.info`, by digest): replicas
    that should agree and do not show as several series. `digest`: the file's as it was read
    (`file_digest`); unset, as it is now."""
    digest = digest if digest is not None else digest_of(Path(path))
    current().metrics.config_digest = None if digest is None else digest[:12]


def file_digest(path: str | Path) -> str | None:
    """The SHA-256 of the file's content (None when it cannot be read): taken before the
    router reads the file at its start, it names what the router serves (`reloading`)."""
    return digest_of(Path(path))


def digest_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
