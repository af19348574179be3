"""Load-time checks of a `vertex` provider: its project and location, the endpoint its location
names, and that every key is a credential the router can use (a service account key is parsed,
its private key loaded, at load: a broken one is refused by its path, not at its first call).

A provider whose keys are express mode API keys calls express mode's URLs, which name no
project and no location: it needs neither, and its location, if given, must be `global` (the
one endpoint express mode is served at). Express mode serves Google's models only, so such a
provider cannot be `publisher: anthropic`; and one provider's keys are all express keys or
none (a pool whose calls went to two kinds of URL would not be one provider)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router_service.config._base import Location, Misplaced
from router_service.config._vertex import (
    ExpressKey,
    ServiceAccount,
    VertexCredential,
    key_file,
    parse_vertex_key,
    signing_key,
)

if TYPE_CHECKING:
    from router_service.config._providers import ProviderConfig

__all__ = ["VertexKeys", "vertex_endpoint", "vertex_problems"]

Problems = list[tuple[Location, str]]


@dataclass(frozen=True, slots=True)
class VertexKeys:
    """What the keys of a valid vertex provider are: whether they are express mode API keys,
    and the secrets read from them that no configured string holds as it is (the log redactor
    masks them: a service account's private key, a key read from a `file:`)."""

    express: bool
    secrets: list[str]


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


def vertex_problems(config: ProviderConfig) -> VertexKeys:
    """Raise Misplaced with every problem of a vertex provider's settings and keys; else what
    its keys are (`VertexKeys`)."""
    credentials, problems = _credentials(config)
    express = [isinstance(c, ExpressKey) for c in credentials.values()]
    if any(express) and not all(express):
        odd = next(i for i, c in credentials.items() if isinstance(c, ExpressKey) != express[0])
        problems.append(
            (
                ("keys", odd, "key"),
                "a vertex provider's keys are all express mode API keys or none: express mode "
                "calls other URLs (no project, no location); give them a provider of their own",
            )
        )
    elif express and all(express):
        problems += _express_settings(config)
    else:
        problems += _project_settings(config)
    if problems:
        raise Misplaced(problems)
    secrets = [c.private_key for c in credentials.values() if isinstance(c, ServiceAccount)]
    secrets += [  # an express key read from a file: in no configured string
        c.key
        for i, c in credentials.items()
        if isinstance(c, ExpressKey) and key_file(config.keys[i].key.get_secret_value())
    ]
    return VertexKeys(express=bool(express) and all(express), secrets=secrets)


def _credentials(config: ProviderConfig) -> tuple[dict[int, VertexCredential], Problems]:
    """Each key's credential (by its index), and the keys that are none."""
    credentials: dict[int, VertexCredential] = {}
    problems: Problems = []
    for i, key in enumerate(config.keys):
        try:
            credential = parse_vertex_key(key.key.get_secret_value())
            if isinstance(credential, ServiceAccount):
                signing_key(credential)
            credentials[i] = credential
        except ValueError as exc:
            problems.append((("keys", i, "key"), str(exc)))
    return credentials, problems


def _project_settings(config: ProviderConfig) -> Problems:
    problems: Problems = []
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
    return problems


def _express_settings(config: ProviderConfig) -> Problems:
    problems: Problems = []
    if config.publisher == "anthropic":
        problems.append(
            (
                ("publisher",),
                "Claude on Vertex AI needs a project: express mode API keys reach Google's "
                "Gemini models only (publisher: google); use service account keys for Claude",
            )
        )
    if config.location not in (None, "global"):
        problems.append(
            (
                ("location",),
                "express mode API keys are served at the global endpoint only: leave location "
                "out (or `global`)",
            )
        )
    return problems
