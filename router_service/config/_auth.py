"""Callers: client keys, scopes and limits."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Literal

from pydantic import (
    Field,
    IPvAnyNetwork,
    ModelWrapValidatorHandler,
    PrivateAttr,
    field_validator,
    model_validator,
)

from router_service.config._base import UNSENDABLE, Location, Misplaced, _Strict, sendable
from router_service.config._throttle import AdminThrottleConfig, KeyThrottleConfig

ClientScope = Literal["chat", "embed", "models", "admin", "route"]


def _plain_key_problem(key: object) -> str | None:
    """Why a client's `key:` cannot be one (None: it can). A caller sends it in a header or
    gRPC metadata, which carry printable ASCII only: one with a pasted curly quote would load
    and never match anything a caller can send."""
    if not isinstance(key, str) or not key.strip():
        return "must be a non-empty string (is its environment variable empty?)"
    return None if sendable(key.strip()) else UNSENDABLE


class ClientKey(_Strict):
    """One of a client's keys: its hash, and when it stops being accepted."""

    key_sha256: str = Field(
        description="Hex SHA-256 of the key. Alternatively `key: ${ENV}`: the key itself, hashed "
        "when the file is loaded; kept in memory only to mask it in the log."
    )
    expires: datetime | None = Field(
        default=None,
        description="RFC 3339 instant (with its offset) from which the key is refused as unknown; "
        "unset: never. Keys expiring within 7 days are warned about at load and reload.",
    )

    # `key:` as written (trimmed), for the log's redactor alone (`telemetry.config_secrets`):
    # a caller's key of any shape, echoed in a header or a body a log line quotes, is masked.
    # Not a field: never dumped, compared by its hash.
    _plain: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _hash_plain_key(
        cls, data: object, handler: ModelWrapValidatorHandler[ClientKey]
    ) -> ClientKey:
        # `key:` is hashed here: the model holds its hash, the redactor the key (`plain_key`).
        plain = None
        if isinstance(data, str):
            data = {"key_sha256": data}
        if isinstance(data, dict) and "key" in data:
            data = dict(data)
            key = data.pop("key")
            if "key_sha256" in data:
                raise ValueError("give either `key` or `key_sha256`, not both")
            if (problem := _plain_key_problem(key)) is not None:
                raise Misplaced([(("key",), problem)])
            # Trimmed as every secret is (`_base._trimmed`): a caller's header value is.
            plain = key.strip()
            data["key_sha256"] = hashlib.sha256(plain.encode()).hexdigest()
        made = handler(data)
        if plain is not None:
            made._plain = plain
        return made

    @property
    def plain_key(self) -> str | None:
        """The key as `key:` gave it (None when given by its hash): for the log's redactor."""
        return self._plain

    @property
    def fingerprint(self) -> str:
        """The key as every key is shown (`keys.fingerprint`): `fp_` + 12 hex digits."""
        # Imported here: the keys package loads the config's.
        from router_service.keys import digest_fingerprint

        return digest_fingerprint(self.key_sha256)

    # The key itself (`_plain`) is no part of what a ClientKey is: equal, hashed, shown and
    # pickled by its hash and expiry only. `key: X` and `key_sha256: <X's hash>` are one key; a
    # repr (a traceback's locals, a debug line) shows its fingerprint, not even its hash (a
    # short key's hash is as good as the key to whoever tries candidates); a pickle (another
    # process) carries no clear text: there its `plain_key` is None, as for a hash-given key.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClientKey):
            return NotImplemented
        return (self.key_sha256, self.expires) == (other.key_sha256, other.expires)

    def __hash__(self) -> int:
        return hash((self.key_sha256, self.expires))

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "fingerprint", self.fingerprint
        yield "expires", self.expires

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        return state | {"__pydantic_private__": {"_plain": None}}

    @field_validator("key_sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("key_sha256 must be 64 hex digits (the SHA-256 of the key)")
        return value

    @field_validator("expires")
    @classmethod
    def _with_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires needs a UTC offset (RFC 3339: 2026-01-31T00:00:00Z)")
        return value

    @property
    def expires_unix(self) -> float | None:
        return None if self.expires is None else self.expires.timestamp()


class ClientKeyConfig(_Strict):
    """One caller of the router: its keys (as hashes), what it may use, its limits."""

    name: str = Field(min_length=1, description="Shown in audit logs; never the key.")
    keys: tuple[ClientKey, ...] = Field(
        min_length=1,
        description="Written `key_sha256:` (hex SHA-256 of the key) or `key: ${ENV}` (the key "
        "itself, hashed at load, kept only to mask it in the log); either takes one key or a "
        "list of them, each a string or `{key_sha256 | key: ..., expires: <RFC 3339>}` "
        "(several keys: a rotation under way; every one acts as the client).",
    )
    models: list[str] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description="Model groups, pools or deployments this key may name; shell patterns "
        "(`openai/*`) allowed; `*`: all.",
    )
    scopes: list[ClientScope] = Field(
        default_factory=lambda: list[ClientScope](["chat", "embed", "models"]),
        description="chat: Chat, ChatStream, Media, MediaStream (moderations, images, audio); "
        "embed: Embed; "
        "models: ListModels; admin: AdminService; route: PickRoute, ReportOutcome (hands out "
        "upstream keys).",
    )
    rpm: int | None = Field(default=None, ge=1, description="Requests per minute; unset: none.")
    tpm: int | None = Field(
        default=None,
        ge=1,
        description="Tokens per minute, estimated before a call and corrected from its usage.",
    )
    max_concurrent_streams: int | None = Field(
        default=None, ge=1, description="Streams open at once; unset: no limit."
    )
    tokens_per_day: int | None = Field(
        default=None,
        ge=1,
        description="Token budget per UTC day (input + output); once used up, calls are refused "
        "with 429 insufficient_quota until midnight UTC. Unset: none.",
    )
    tokens_per_month: int | None = Field(
        default=None,
        ge=1,
        description="Token budget per UTC calendar month, as tokens_per_day. Unset: none.",
    )
    usd_per_day: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Money budget per UTC day, in USD: the cost of its calls at the prices of "
        "the deployments that answered them (models.*.deployments[].price, providers.*.price); "
        "once spent, calls are refused as with tokens_per_day. Unset: none.",
    )
    usd_per_month: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Money budget per UTC calendar month, in USD, as usd_per_day. Unset: none.",
    )
    cache: bool = Field(
        default=True,
        description="Whether the response cache (`cache:`) serves and keeps this client's "
        "answers; false: never, whatever its calls ask (an app that must always get a fresh "
        "answer).",
    )

    @model_validator(mode="before")
    @classmethod
    def _gather_keys(cls, data: object) -> object:
        # `key` and `key_sha256` (one or a list) become `keys`, each item a ClientKey's input.
        if not isinstance(data, dict) or not ({"key", "key_sha256"} & data.keys()):
            if isinstance(data, dict) and "keys" not in data:
                raise ValueError("give the client's `key_sha256` (or `key`)")
            return data
        data = dict(data)
        if "key" in data and "key_sha256" in data:
            raise ValueError("give either `key` or `key_sha256`, not both")
        field = "key" if "key" in data else "key_sha256"
        given = data.pop(field)
        items: list[Any] = given if isinstance(given, list) else [given]
        if not items:
            raise Misplaced([((field,), "needs at least one key")])
        data["keys"] = [{field: item} if not isinstance(item, dict) else item for item in items]
        # A plain key refused is named where it was written (`key`, or `key[1]` in a list).
        problems: list[tuple[Location, str]] = [
            ((field,) if isinstance(given, str) else (field, j), problem)
            for j, item in enumerate(data["keys"])
            if "key" in item and (problem := _plain_key_problem(item["key"])) is not None
        ]
        if problems:
            raise Misplaced(problems)
        return data

    @property
    def key_sha256(self) -> str:
        """The hash of its first key (a client with one key: its key)."""
        return self.keys[0].key_sha256


def _loopback() -> list[IPv4Network | IPv6Network]:
    return [IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")]


class AuthConfig(_Strict):
    """Who may call the router. Without client keys the router refuses to start, unless `open`."""

    open: bool = Field(
        default=False,
        description="Admit callers without a known key (as `anonymous`, every scope, no limits). "
        "Listed keys still get their own scopes and limits. For demos and tests only.",
    )
    clients: list[ClientKeyConfig] = Field(default_factory=list)
    audit: Literal["all", "refusals"] = Field(
        default="all",
        description="Audit lines on logger switchboard.audit: every attempt (all), or only the "
        "refused ones (refusals: no line per admitted call, which costs ~7 % of a plain "
        "request's work in the router).",
    )

    max_issued_keys: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Keys issued at run time (AdminService.IssueClientKey) one client may have "
        "live at once (not revoked, not expired); one more is refused (RESOURCE_EXHAUSTED).",
    )
    max_ephemeral_keys: int = Field(
        default=200,
        ge=1,
        le=100_000,
        description="Ephemeral Realtime client secrets (`POST /v1/realtime/client_secrets`, "
        "RouterService.CreateRealtimeClientSecret) one client may have live at once; apart "
        "from `max_issued_keys` (they last minutes, a browser each); one more is refused "
        "(RESOURCE_EXHAUSTED).",
    )
    admin_throttle: AdminThrottleConfig = Field(
        default_factory=AdminThrottleConfig,
        description="AdminService calls with a key the router does not know: throttled per "
        "caller address and overall (the other services' by `key_throttle`, per address only: "
        "refusing every caller past an overall limit would let anyone stop them).",
    )
    key_throttle: KeyThrottleConfig = Field(
        default_factory=KeyThrottleConfig,
        description="Calls to any service with a key the router does not know: throttled per "
        "caller address, so that no key can be guessed without limit.",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=_loopback,
        description="Peers (CIDR) whose `x-forwarded-for` names the caller (the right-most hop "
        "not in this list), as uvicorn's FORWARDED_ALLOW_IPS: the edges. Default loopback (an "
        "edge on the router's host); callers through an edge elsewhere share its address "
        "until it is listed. A caller in-process (`switchboard serve`) is the edge itself.",
    )
    issued_keys_resync_s: float = Field(
        default=30.0,
        gt=0,
        description="How often each replica reads the issued keys again on its own, in case a "
        "notice of an issue or revocation was lost (a Redis subscriber that dropped). A notice "
        "normally reaches every replica within milliseconds.",
    )

    @property
    def key_digests(self) -> frozenset[str]:
        """The hex SHA-256 of every client's key. One configured by `key_sha256` has no clear
        text in the process to search a text for, and may have any shape: a label holding it is
        found by its words' hashes (`_masking.holds_digest`)."""
        return frozenset(key.key_sha256 for client in self.clients for key in client.keys)

    @model_validator(mode="after")
    def _usable(self) -> AuthConfig:
        if not self.open and not self.clients:
            raise ValueError(
                "no client keys: add auth.clients, or set auth.open: true to run without "
                "authentication"
            )
        problems: list[tuple[Location, str]] = []
        names: dict[str, int] = {}
        hashes: dict[str, int] = {}
        for i, client in enumerate(self.clients):
            if (first := names.setdefault(client.name, i)) != i:
                problems.append(
                    (
                        ("clients", i, "name"),
                        f"client names must be unique (clients[{first}] has it too)",
                    )
                )
            for key in client.keys:
                if (first := hashes.setdefault(key.key_sha256, i)) != i:
                    problems.append(
                        (
                            ("clients", i),
                            f"two clients have the same key (clients[{first}] and this one)",
                        )
                    )
        if problems:
            raise Misplaced(problems)
        return self
