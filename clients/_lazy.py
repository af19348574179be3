"""Lazy names for a package whose importers mostly need a few of them.

Each name is imported from its module when first read, then kept in the package. The codec
packages of the other APIs (Gemini, Ollama, Anthropic) are imported by the edge at start-up
(their tables say which paths are theirs and how their errors look), but their translation is
needed by their callers' first call only; `router_service.config` holds the router's whole
config, of which the edge reads its own part; `clients.codec` also translates APIs (batches,
conversations, the Responses API's stored and streamed answers) that a router answering chat
calls never uses. An idle edge holds neither of the first two, such a router none of the
third's (benchmarks/README.md, "Where idle RSS goes", 2026-12-05 and 2026-12-06).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from importlib.util import find_spec
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module `__getattr__` and `__dir__` of `package`, whose names live in its modules as
    `where` says (name -> module, relative to the package). A name not in `where` that is one
    of the package's submodules is that submodule, imported (`clients.errors` after `import
    clients`, as when the package imported its modules eagerly); `dir()` lists every name,
    read or not (a REPL's completion)."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            if not name.startswith("_") and find_spec(f"{package}.{name}") is not None:
                return import_module(f"{package}.{name}")  # the import binds it in the package
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # read once: later reads find it there
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
