"""The default trust store, loaded once per test process for the HTTP clients the shared fixtures
make (the SDKs' and httpx's `verify=True`).

Each client loaded it afresh (the system CA bundle parsed: ~50 ms, more on a loaded CI
machine), a share of the setup of every test with an SDK or an httpx client on the edge; the
tests talk plain HTTP on loopback, or HTTPS with a test CA passed as `verify` of their own.
Loaded as each client would (`httpx.create_ssl_context`), and only read after that."""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["default_trust"]


@functools.cache
def default_trust() -> ssl.SSLContext:
    return httpx.create_ssl_context()
