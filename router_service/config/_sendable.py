"""What a provider sends with every call must fit in an HTTP header: printable ASCII (httpx
encodes header values so). Loaded as it was, a key or header with another character (a
typographic quote, a stray Unicode space pasted with it) failed every call to its provider with
an internal error; refused at load instead, by its path and never shown."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from router_service.config._base import UNSENDABLE, Location, sendable
from router_service.config._key_files import KEY_FILE_KINDS, key_file

__all__ = ["unsendable"]

_WHY = UNSENDABLE
# A header's name is a token (RFC 9110 5.1): an upstream refuses any other with a 400 that
# quotes the header line, its value too, passed on to each caller as the caller's mistake.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_A_NAME = "is not a header name: letters, digits and !#$%&'*+-.^_`|~ only (no space or colon)"


def unsendable(
    kind: str, keys: Sequence[str], headers: Mapping[str, str], *, identity_header: str | None
) -> list[tuple[Location, str]]:
    """Where a provider's keys, headers and managed identity header (sent with each token
    request, as X-IDENTITY-HEADER or `secret`) hold what no HTTP header can carry."""
    problems: list[tuple[Location, str]] = [
        (("keys", i), _WHY)
        for i, key in enumerate(keys)
        if _sent_as_is(kind, key) and not sendable(key)
    ]
    for name, value in headers.items():
        if not (sendable(name) and sendable(value)):
            problems.append((("headers", name), _WHY))
        elif not _TOKEN.fullmatch(name):
            problems.append((("headers", name), _NOT_A_NAME))
    if identity_header is not None and not sendable(identity_header):
        problems.append((("identity_header",), _WHY))
    return problems


def _sent_as_is(kind: str, key: str) -> bool:
    # A vertex or azure key may be a credential read, not sent: a `file:` path, or JSON (a
    # service account, a service principal) that may span lines. Their other keys (an azure
    # `api-key`, a vertex express key or access token) go in a header as the other kinds' do.
    if kind not in KEY_FILE_KINDS:
        return True
    return key_file(key) is None and not key.lstrip().startswith("{")
