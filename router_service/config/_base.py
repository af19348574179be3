"""The shared base of every config model, and the value types they share."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, ValidationInfo

Strategy = Literal["ordered", "weighted", "thompson", "latency"]
Location = tuple[str | int, ...]


class _Strict(BaseModel):
    # A typo in a config key is an error, not a silently ignored setting. No number is infinite
    # or NaN: an infinite TTL would be the state store's FOREVER (no expiry, outside the memory
    # store's budget), for which a cached answer or a stored response is no candidate.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Misplaced(ValueError):
    """Problems a validator finds below the model it validates (an unknown reference, a
    duplicate), each with the path of the offending value relative to that model: the loader
    points at that value's line instead of the model's."""

    def __init__(self, problems: list[tuple[Location, str]]) -> None:
        super().__init__("; ".join(f"{dotted(loc)}: {message}" for loc, message in problems))
        self.problems = problems


def dotted(loc: Location) -> str:
    """`providers.openai.keys[1]` from `("providers", "openai", "keys", 1)`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _trimmed(value: SecretStr) -> SecretStr:
    # An empty `${VAR}` would otherwise run with an empty key (or admit an empty admin token).
    # Whitespace around a secret is never part of it: a secret file's last newline (a Kubernetes
    # secret `--from-file`) would break the header it goes in, or never match a caller's.
    secret = value.get_secret_value()
    if not secret.strip():
        raise ValueError("must not be empty or blank (is its environment variable empty?)")
    return value if secret == secret.strip() else SecretStr(secret.strip())


def _beside_config(value: str, info: ValidationInfo) -> str:
    # Relative to the config file's directory, not the working directory (systemd's is /).
    base = info.context.get("base_dir") if isinstance(info.context, dict) else None
    if base is None or Path(value).is_absolute():
        return value
    return str(Path(base) / value)


Secret = Annotated[SecretStr, AfterValidator(_trimmed)]
"""A secret setting: never shown, never empty, without whitespace around it."""

UNSENDABLE = "must be printable ASCII (a header carries it): a character mistyped or pasted?"


def sendable(text: str) -> bool:
    """Whether an HTTP header value or gRPC metadata can carry `text` as it is: printable
    ASCII (httpx encodes header values so, grpc refuses other metadata, and a caller's header
    is read back as Latin-1, not the UTF-8 it was typed in)."""
    return text.isascii() and text.isprintable()


def _sendable_secret(value: SecretStr) -> SecretStr:
    if not sendable(value.get_secret_value()):
        raise ValueError(UNSENDABLE)
    return value


HeaderSecret = Annotated[SecretStr, AfterValidator(_trimmed), AfterValidator(_sendable_secret)]
"""A secret a caller sends in a header (an admin token, a client key): a Secret no character of
which a header could not carry (a pasted curly quote would never match, whoever typed it)."""

FilePath = Annotated[str, AfterValidator(_beside_config)]
"""A file named in the config: a relative path is relative to the config file's directory."""


def _http_url(value: str, info: ValidationInfo) -> str:
    # The errors never repeat the URL: `https://user:password@host` carries a secret.
    field = info.field_name
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{field} must start with http:// or https://")
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError: not a number, or past 65535
    except ValueError:
        port = -1
    if port is not None and not 0 < port <= 65535:
        raise ValueError(f"{field}: its port is not a number from 1 to 65535")
    if not parts.hostname:
        raise ValueError(f"{field}: its host is missing")
    if any(c.isspace() for c in value):
        raise ValueError(f"{field}: its text holds whitespace (a host or path has none)")
    if "@" in parts.netloc:
        # The router sends a provider's credentials as its keys and headers, never as a URL's
        # userinfo: one there would go nowhere it is meant to, and show wherever a URL does.
        raise ValueError(
            f"{field} must not hold credentials (`user:password@`): a key goes in `keys:`, "
            "another credential in `headers:`, each from ${ENV}"
        )
    return value.rstrip("/")


def _root_url(value: str, info: ValidationInfo) -> str:
    # Each call appends its path (`/chat/completions`, `/{tenant}/oauth2/v2.0/token`): after a
    # query or a fragment it would be part of them, every call asking for the root (a 404).
    field = info.field_name
    parts = urlsplit(value)
    if parts.query or value.endswith("?"):
        raise ValueError(
            f"{field}: its query (`?…`) would come before the path each call adds: give the "
            "root alone (azure's api-version is `api_version:`)"
        )
    if parts.fragment or "#" in value:
        raise ValueError(f"{field}: its fragment (`#…`) would hide the path each call adds")
    return value


def as_written(value: object) -> object:
    """A bare YAML date (2024-10-21), or a mapping's, as the text written; a date with a time
    stays a datetime (its text would not be the one written: refused as no string)."""
    if isinstance(value, dict):
        return {name: as_written(item) for name, item in value.items()}
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


EndpointURL = Annotated[str, AfterValidator(_http_url)]
"""An http(s) URL a request can be sent to (a port that is a number, a host), without its
trailing `/`."""

HttpURL = Annotated[str, AfterValidator(_http_url), AfterValidator(_root_url)]
"""An `EndpointURL` that calls append their paths to: no query, no fragment."""
