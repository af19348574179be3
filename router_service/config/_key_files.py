"""Pool keys that are credentials (a service account key, a service principal): given inline as
their JSON text (usually from an environment variable), or as `file:/path/to/key.json`, read at
load and at each reload. One way for every kind that takes them (`vertex`, `azure`). And a pool's
keys each listed once, whatever way they are given (`listed_twice`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from pydantic import SecretStr, ValidationInfo

if TYPE_CHECKING:
    from router_service.config._base import Location
    from router_service.config._providers import KeyConfig

__all__ = [
    "FILE_PREFIX",
    "KEY_FILE_KINDS",
    "key_beside_config",
    "key_file",
    "key_text",
    "listed_twice",
]

FILE_PREFIX = "file:"
# The provider kinds whose keys may be `file:` credentials.
KEY_FILE_KINDS = frozenset({"vertex", "azure"})


def key_file(secret: str) -> str | None:
    """The path of a `file:` key; None for a key given inline."""
    return secret[len(FILE_PREFIX) :].strip() if secret.startswith(FILE_PREFIX) else None


def key_text(secret: str, what: str) -> str:
    """The key's text, stripped: read from its file for a `file:` key. Raises ValueError naming
    the file (never its content); `what` says what the file should hold."""
    path = key_file(secret)
    if path is None:
        return secret.strip()
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the {what} file {path}: {exc}") from None


def key_beside_config(key: KeyConfig, info: ValidationInfo) -> KeyConfig:
    """A `file:` key with a relative path, made relative to the config file's directory (as
    every file the config names is)."""
    path = key_file(key.key.get_secret_value())
    base = info.context.get("base_dir") if isinstance(info.context, dict) else None
    if path is None or base is None or Path(path).is_absolute():
        return key
    return key.model_copy(update={"key": SecretStr(f"file:{Path(base) / path}")})


def listed_twice(keys: list[str]) -> list[tuple[Location, str]]:
    """A key listed again (two variables holding one key; two `file:` paths to one credential:
    the same file, a symlink, a copy): its slots, rpm and tpm are one, shown once; two entries
    would split its weight's share and show it twice. Files are named, never what they hold."""
    first: dict[str, int] = {}
    problems: list[tuple[Location, str]] = []
    for i, key in enumerate(keys):
        if (at := first.setdefault(_credential(key), i)) != i:
            message = f"the same key as keys[{at}]{_files(keys[at], key)} (a key is listed once: "
            problems.append((("keys", i), message + "its one entry's limits are all it has)"))
    return problems


def _credential(key: str) -> str:
    """What `key` is, however given: a file's text (its path when unreadable: the key's own
    check says why), a JSON credential's fields in one order."""
    try:
        text = key_text(key, "key")
    except ValueError:
        return key
    if text.startswith("{"):
        try:
            return orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONDecodeError:
            pass
    return text


def _files(*keys: str) -> str:
    """The files two entries name (`file:` keys only), for the error to say where they are."""
    paths = [path for key in keys if (path := key_file(key)) is not None]
    if len(paths) == 1:
        return f" ({paths[0]} holds it)"
    return f" ({' and '.join(paths)} hold one key)" if paths else ""
