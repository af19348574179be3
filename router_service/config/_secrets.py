"""A config file that holds secrets in clear must not be readable by anyone but its owner."""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from router_service.config._entra import (
    WorkloadIdentity,
    is_entra_key,
    is_managed_identity_key,
    parse_entra_key,
)
from router_service.config._key_files import KEY_FILE_KINDS, key_file

__all__ = ["SECRET_HEADER", "literal_secrets", "warn_if_exposed"]

log = logging.getLogger("switchboard.config")

# Extra request headers that carry credentials (`Authorization`, `x-api-key`, `cf-aig-token`…).
SECRET_HEADER = re.compile(r"auth|key|token|secret|password|cookie", re.IGNORECASE)


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
    provider keys and credential headers, client keys given as `key:`, the edge's admin token
    and admin router key, a password in `state.url` (one in a provider's URL is refused at load:
    `_base._http_url`)."""
    if not isinstance(data, dict):
        return []
    found = _provider_secrets(_section(data, "providers"))
    clients = _section(data, "auth").get("clients")
    for i, client in enumerate(clients if isinstance(clients, list) else ()):
        key = client.get("key") if isinstance(client, dict) else None
        for j, item in enumerate(key if isinstance(key, list) else [key]):
            value = item.get("key") if isinstance(item, dict) else item
            if _literal(value):
                found.append(f"auth.clients[{i}].key" + (f"[{j}]" if isinstance(key, list) else ""))
    edge = _section(data, "edge")
    found.extend(
        f"edge.{name}" for name in ("admin_token", "admin_router_key") if _literal(edge.get(name))
    )
    url = _section(data, "state").get("url")
    if isinstance(url, str) and _literal(_password(url)):
        found.append("state.url")
    return found


def _provider_secrets(providers: dict[Any, Any]) -> list[str]:
    found: list[str] = []
    for name, provider in providers.items():
        provider = provider if isinstance(provider, dict) else {}
        keys = provider.get("keys")
        for i, key in enumerate(keys if isinstance(keys, list) else ()):
            value = key.get("key") if isinstance(key, dict) else key
            if provider.get("kind") in KEY_FILE_KINDS and key_file(str(value)) is not None:
                continue  # where the key is, not the key (a service account's, a principal's)
            if provider.get("kind") == "azure" and _secretless_identity(str(value)):
                continue  # an identity's name and ids: the platform holds its credentials
            if _literal(value):
                found.append(f"providers.{name}.keys[{i}]")
        if _literal(provider.get("identity_header")):
            found.append(f"providers.{name}.identity_header")
        headers = provider.get("headers")
        for header, value in headers.items() if isinstance(headers, dict) else ():
            if SECRET_HEADER.search(str(header)) and _literal(value):
                found.append(f"providers.{name}.headers.{header}")
    return found


def _secretless_identity(key: str) -> bool:
    """Whether an azure key is a managed identity or a workload identity: ids and a path."""
    if is_managed_identity_key(key):
        return True
    try:
        return is_entra_key(key) and isinstance(parse_entra_key(key), WorkloadIdentity)
    except ValueError:
        return False


def _section(data: dict[Any, Any], name: str) -> dict[Any, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:  # a malformed URL (bad port…): validation says so
        return None


def _literal(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "${" not in value
