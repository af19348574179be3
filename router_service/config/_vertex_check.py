"""Load-time checks of a `vertex` provider: its project and location, the endpoint its location
names, and that every key is a credential the router can use (a service account key is parsed,
its private key loaded, at load: a broken one is refused by its path, not at its first call)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from router_service.config._base import Location, Misplaced
from router_service.config._vertex import ServiceAccount, parse_vertex_key, signing_key

if TYPE_CHECKING:
    from router_service.config._providers import ProviderConfig

__all__ = ["vertex_endpoint", "vertex_problems"]

GLOBAL_ENDPOINT = "https://aiplatform.googleapis.com"
# A region (`us-central1`, `europe-west4`, `me-central2`) or `global`.
_LOCATION = re.compile(r"[a-z]+(?:-[a-z]+\d*)*")
# A project id (6-30 lower-case letters, digits, hyphens), or a domain-scoped one (`example.com:p`).
_PROJECT = re.compile(r"(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")


def vertex_endpoint(location: object) -> str:
    """Vertex AI's endpoint for a location: `https://{location}-aiplatform.googleapis.com`, or
    the global one for `global` (and for a location that is no location, which is refused)."""
    if isinstance(location, str) and location != "global" and _LOCATION.fullmatch(location):
        return f"https://{location}-aiplatform.googleapis.com"
    return GLOBAL_ENDPOINT


def vertex_problems(config: ProviderConfig) -> list[str]:
    """Raise Misplaced with every problem of a vertex provider's settings and keys; else the
    private keys of its service accounts (for the log redactor: a key read from a `file:` is in
    no configured string, and one pasted as JSON text is inside one, not alone)."""
    problems: list[tuple[Location, str]] = []
    if not config.project:
        problems.append(
            (("project",), "a vertex provider needs project (the Google Cloud project id)")
        )
    elif not _PROJECT.fullmatch(config.project):
        problems.append((("project",), f"{config.project!r} is not a Google Cloud project id"))
    if not config.location:
        problems.append((("location",), "a vertex provider needs location (us-central1, global…)"))
    elif not _LOCATION.fullmatch(config.location):
        problems.append((("location",), f"{config.location!r} is not a Vertex AI location"))
    private_keys: list[str] = []
    for i, key in enumerate(config.keys):
        try:
            credential = parse_vertex_key(key.key.get_secret_value())
            if isinstance(credential, ServiceAccount):
                signing_key(credential)
                private_keys.append(credential.private_key)
        except ValueError as exc:
            problems.append((("keys", i, "key"), str(exc)))
    if problems:
        raise Misplaced(problems)
    return private_keys
