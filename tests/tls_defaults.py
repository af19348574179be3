"""One default TLS context per worker for the test suite's HTTP clients.

httpx (and the `httpx2` the openai and anthropic SDKs ship on) builds a new `ssl.SSLContext` for
every client, loading certifi's CA bundle into it: ~25 ms of CPU quiet, 150-250 ms on a loaded
two-core machine, for each of the thousands of `httpx.AsyncClient` / `openai.AsyncOpenAI` the
tests open, almost all of them to `http://` loopback servers that never use it. A context with
default verification is the same for every client and made to be shared (`ssl` docs), so the
suite makes it once per worker (per SSL_CERT_FILE / SSL_CERT_DIR, which choose its CA bundle).
Anything else asked of `create_ssl_context` (`verify=False`, a context or CA bundle of a test's
own PKI, a client certificate) is made as before.
"""

from __future__ import annotations

import functools
import importlib
import os
import ssl
from collections.abc import Callable
from typing import Any

__all__ = ["share_default_tls_contexts"]

_LIBRARIES = ("httpx", "httpx2")


def share_default_tls_contexts() -> None:
    """Make the default-verification context of each httpx flavour once (idempotent)."""
    for library in _LIBRARIES:
        try:
            transports = importlib.import_module(f"{library}._transports.default")
        except ImportError:  # pragma: no cover - an SDK version without its own httpx
            continue
        made = getattr(transports, "create_ssl_context")  # noqa: B009  # not in its typed names
        if not getattr(made, "_shared_default", False):
            setattr(transports, "create_ssl_context", _shared(made))  # noqa: B010


def _shared(make: Callable[..., ssl.SSLContext]) -> Callable[..., ssl.SSLContext]:
    # By what decides the default context: whether the environment is read, and what it says.
    made: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}

    @functools.wraps(make)
    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is not True or cert is not None:
            return make(verify=verify, cert=cert, trust_env=trust_env)
        env = os.environ
        key = (trust_env, env.get("SSL_CERT_FILE"), env.get("SSL_CERT_DIR"))
        if key not in made:
            made[key] = make(verify=verify, cert=cert, trust_env=trust_env)
        return made[key]

    create_ssl_context._shared_default = True  # type: ignore[attr-defined]
    return create_ssl_context
