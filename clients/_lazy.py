"""Lazy names for a package whose importers mostly need a few of them.

Each name is imported from its module when first read, then kept in the package. The codec
packages of the other APIs (Gemini, Ollama, Anthropic) are imported by the edge at start-up
(their tables say which paths are theirs and how their errors look), but their translation is
needed by their callers' first call only; `router_service.config` holds the router's whole
config, of which the edge reads its own part. An idle edge holds neither (benchmarks/README.md,
"Where idle RSS goes", 2026-12-05).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """The module `__getattr__` of `package`, whose names live in its modules as `where` says
    (name -> module, relative to the package)."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # read once: later reads find it there
        return value

    return __getattr__
