"""The path forms clients send for the edge's routes: `tidied` answers each as its route's path.

A trailing slash (`/v1/chat/completions/`) and doubled slashes (`/v1//chat/completions`: a base
URL pasted with its own trailing slash, joined naively) are merged away, as nginx's
`merge_slashes` does, before any routing (the hot routes', Starlette's, `HeadAsGet`'s), so every
router of the edge serves them as the plain path. Starlette would answer the trailing slash with
a 307 to an absolute `http://` URL, wrong behind a TLS-terminating proxy and making the client
send its body again; the doubled slash would be a 404, and `/v1/models/` the model ``.
"""

from __future__ import annotations

import re

from starlette.types import Scope

__all__ = ["tidied"]

_SLASHES = re.compile("/{2,}")
_RAW_SLASHES = re.compile(b"/{2,}")


def tidied(scope: Scope) -> Scope:
    """`scope` with its path's (and raw path's) slash runs merged and its trailing slash
    dropped (the root stays `/`); `scope` itself (the per-request cost: two string tests) when
    there is nothing to tidy."""
    path: str = scope.get("path", "/")  # lifespan: none
    if (path[-1:] != "/" and "//" not in path) or path == "/":
        return scope
    tidy = {**scope, "path": _SLASHES.sub("/", path).rstrip("/") or "/"}
    raw: bytes | None = scope.get("raw_path")
    if raw is not None:
        tidy["raw_path"] = _RAW_SLASHES.sub(b"/", raw).rstrip(b"/") or b"/"
    return tidy
