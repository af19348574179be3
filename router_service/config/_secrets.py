"""A config file that holds secrets in clear must not be readable by anyone but its owner."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

import yaml

__all__ = ["literal_secrets", "warn_if_exposed"]

log = logging.getLogger("switchboard.config")


def warn_if_exposed(path: Path, text: str) -> bool:
    """Warn when `path` is readable by group or others and holds secrets literally (not as
    `${ENV}`); returns whether it warned."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if not mode & (stat.S_IRGRP | stat.S_IROTH):
        return False
    try:
        found = literal_secrets(yaml.safe_load(text))
    except yaml.YAMLError:
        return False
    if not found:
        return False
    log.warning(
        "%s is readable by group or others (mode %s) and holds secrets in clear (%s): "
        "`chmod 600` it, or take the secrets from the environment with ${VAR}",
        path,
        stat.filemode(mode),
        ", ".join(found),
    )
    return True


def literal_secrets(data: Any) -> list[str]:
    """Where the raw (not yet interpolated) config holds a secret that is not an `${ENV}`:
    provider keys, client keys given as `key:`, the edge's admin token."""
    found: list[str] = []
    if not isinstance(data, dict):
        return found
    providers = data.get("providers")
    for name, provider in providers.items() if isinstance(providers, dict) else ():
        keys = provider.get("keys") if isinstance(provider, dict) else None
        for i, key in enumerate(keys if isinstance(keys, list) else ()):
            value = key.get("key") if isinstance(key, dict) else key
            if _literal(value):
                found.append(f"providers.{name}.keys[{i}]")
    auth = data.get("auth")
    clients = auth.get("clients") if isinstance(auth, dict) else None
    for i, client in enumerate(clients if isinstance(clients, list) else ()):
        if isinstance(client, dict) and _literal(client.get("key")):
            found.append(f"auth.clients[{i}].key")
    edge = data.get("edge")
    if isinstance(edge, dict) and _literal(edge.get("admin_token")):
        found.append("edge.admin_token")
    return found


def _literal(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "${" not in value
