"""Who is calling: client keys as SHA-256 hashes, compared in constant time, never kept in clear;
keys issued at run time looked up in this replica's mirror of them (`_issued.py`)."""

from __future__ import annotations

import glob
import hashlib
import hmac
import logging
from contextvars import ContextVar
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from router_service._masking import shown_label
from router_service.auth._issued import IssuedKey, IssuedKeys, RealtimeGrant
from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.config import AuthConfig, ClientKeyConfig, ClientScope
from router_service.errors import AuthenticationError

__all__ = [
    "ANONYMOUS",
    "AdminKeyOutOfScopeError",
    "Authenticator",
    "Caller",
    "bearer_token",
    "current_caller",
    "hash_key",
    "unknown_key_error",
]

log = logging.getLogger("switchboard.auth")

# Keys that expire within this long are warned about when the config is loaded or reloaded.
EXPIRY_WARNING_S = 7 * 86400.0
_PURGE_MIN = 1024  # issued keys' callers held before those of keys gone are dropped

_ALL_SCOPES: frozenset[ClientScope] = frozenset({"chat", "embed", "models", "admin", "route"})


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: a configured client key, or `anonymous` in open mode."""

    name: str
    scopes: frozenset[ClientScope]
    models: tuple[str, ...] = ("*",)
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent_streams: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    usd_per_day: float | None = None
    usd_per_month: float | None = None
    cache: bool = True  # the response cache may serve and keep its answers
    anonymous: bool = False
    # Which of the client's keys was presented (audit lines): its fingerprint, and the label
    # an issued key was given ("" for a configured key).
    key_fingerprint: str = ""
    key_label: str = ""
    # The presented key's issued id ("" for a configured key) and expiry (None: none): an
    # ephemeral secret it asks for lasts no longer, and an issued one's revocation ends it.
    key_id: str = ""
    key_expires_unix: float | None = None
    # Set for an ephemeral Realtime client secret: Realtime sessions of its model only, each
    # started with its session config (`Gate.authenticate` refuses every other method).
    realtime_grant: RealtimeGrant | None = None

    @classmethod
    def from_config(cls, client: ClientKeyConfig) -> Caller:
        return cls(
            name=client.name,
            scopes=frozenset(client.scopes),
            models=tuple(client.models),
            rpm=client.rpm,
            tpm=client.tpm,
            max_concurrent_streams=client.max_concurrent_streams,
            tokens_per_day=client.tokens_per_day,
            tokens_per_month=client.tokens_per_month,
            usd_per_day=client.usd_per_day,
            usd_per_month=client.usd_per_month,
            cache=client.cache,
        )

    def may_use(self, model: str) -> bool:
        """Whether `model` matches one of the allowed names or shell patterns (`*`: all)."""
        return any(fnmatchcase(model, pattern) for pattern in self.models)

    @property
    def limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    @property
    def budgeted(self) -> bool:
        """A token or money budget (either is counted per period in the same bucket)."""
        return self.tokens_per_day is not None or self.tokens_per_month is not None or self.spends

    @property
    def spends(self) -> bool:
        """A money budget: its calls' estimates are priced at admission."""
        return self.usd_per_day is not None or self.usd_per_month is not None


ANONYMOUS = Caller(name="anonymous", scopes=_ALL_SCOPES, anonymous=True)

# The caller of the RPC being served. grpc.aio runs every RPC (interceptors and handler alike) in
# a context of its own, so a servicer can read it anywhere below the interceptor.
_CURRENT: ContextVar[Caller | None] = ContextVar("switchboard_caller", default=None)


def current_caller() -> Caller | None:
    """The caller of the RPC this code serves; None outside an authenticated RPC."""
    return _CURRENT.get()


def set_current_caller(caller: Caller) -> None:
    _CURRENT.set(caller)


def hash_key(key: str) -> str:
    """The hex SHA-256 a client key is configured by (`auth.clients[].key_sha256`)."""
    return hashlib.sha256(key.encode()).hexdigest()


_UNKNOWN_KEY = "Incorrect client key provided."


def unknown_key_error() -> AuthenticationError:
    """How a key the router does not know is answered."""
    return AuthenticationError(_UNKNOWN_KEY, code="invalid_api_key")


class AdminKeyOutOfScopeError(AuthenticationError):
    """A key holding the `admin` scope on a method whose scope it lacks: answered and counted
    exactly as an unknown key (`server/_throttles.py`), else the answer would tell a guesser it
    found the admin key, through services without the admin throttle's overall limit. The
    audit line says the truth."""

    def __init__(self) -> None:
        super().__init__(_UNKNOWN_KEY, code="invalid_api_key")


def bearer_token(authorization: str | None) -> str | None:
    """The key of an `authorization: Bearer <key>` value; None when absent or another scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class Authenticator:
    """Maps a presented key to its Caller. Every configured hash is compared, with
    `hmac.compare_digest`, whatever matches: the time taken says nothing about the key (a
    configured key may be one a human chose: its hash must not leak). Issued keys (random, 32
    bytes) are then looked up by their hash in `issued` (see `IssuedKeys.find` for why a dict
    lookup is fine there)."""

    def __init__(
        self, config: AuthConfig, *, clock: Clock = SYSTEM_CLOCK, issued: IssuedKeys | None = None
    ) -> None:
        self.open = config.open
        self._clock = clock
        self._issued = issued
        self.callers = {client.name: Caller.from_config(client) for client in config.clients}
        # (hash, expiry or None, the caller with that key's fingerprint), every configured key.
        self._clients = [
            (
                bytes.fromhex(key.key_sha256),
                key.expires_unix,
                replace(
                    self.callers[client.name],
                    key_fingerprint=key.fingerprint,
                    key_expires_unix=key.expires_unix,
                ),
            )
            for client in config.clients
            for key in client.keys
        ]
        # An issued key's label (its audit lines) holding a configured key, whatever its
        # shape, is masked (`_masking.holds_digest`).
        self._digests = config.key_digests
        self._as_issued: dict[str, Caller] = {}  # issued key id -> its caller, made once
        # (client, fingerprint) of each configured key: an ephemeral secret one of them asked
        # for ends when it is removed (a leaked key rotated out takes its secrets with it).
        self._configured = {(caller.name, caller.key_fingerprint) for _, _, caller in self._clients}
        self._purge_at = _PURGE_MIN  # entries at which those of keys gone are dropped
        warn_expiring(config, clock.now())

    def identify(self, key: str | None) -> Caller:
        """The caller `key` belongs to. Without a known key: `ANONYMOUS` in open mode, else
        AuthenticationError. An expired key, or an issued one revoked or whose client is no
        longer configured, is unknown."""
        found: Caller | None = None
        if key is not None:
            digest = hashlib.sha256(key.encode()).digest()
            for expected, expires, caller in self._clients:
                # The clock is read only for a match that expires: most calls never read it.
                if hmac.compare_digest(digest, expected) and (
                    expires is None or self._clock.now() < expires
                ):
                    found = caller
            if found is None and self._issued is not None:
                issued = self._issued.find(digest)
                found = self._issued_caller(issued) if issued is not None else None
        if found is not None:
            return found
        if self.open:
            return ANONYMOUS
        if key is None:
            raise AuthenticationError(
                "Missing client key: send `authorization: Bearer <key>`.", code="missing_api_key"
            )
        raise unknown_key_error()

    def _issued_caller(self, issued: IssuedKey) -> Caller | None:
        """The caller an issued key acts as: its client's, naming the key; None when its client
        is not configured (orphaned)."""
        caller = self._as_issued.get(issued.id)
        if caller is None:
            client = self.callers.get(issued.client)
            if client is None:
                return None
            if issued.parent.startswith("fp_") and (client.name, issued.parent) not in (
                self._configured
            ):
                return None
            caller = replace(
                client,
                key_fingerprint=issued.fingerprint,
                key_label=shown_label(issued.label, (), self._digests),
                key_id=issued.id,
                key_expires_unix=issued.expires_unix,
            )
            if issued.realtime is not None:  # its model alone (escaped: a name, not a pattern)
                # while its client may still use it: a reload narrowing the client narrows it
                model = issued.realtime.model
                models = (glob.escape(model),) if client.may_use(model) else ()
                caller = replace(caller, models=models, realtime_grant=issued.realtime)
            if len(self._as_issued) >= self._purge_at:
                self._purge_issued()
            self._as_issued[issued.id] = caller
        return caller

    @property
    def cached_callers(self) -> int:
        """Issued keys' callers held now (tests prove they stay bounded)."""
        return len(self._as_issued)

    def _purge_issued(self) -> None:
        """Drop the callers of keys no longer live: ephemeral secrets come and go every few
        minutes, each with its session config (up to 64 KiB), and were all kept until a
        reload. Amortized: next when twice as many are held as are left."""
        assert self._issued is not None
        as_issued = self._as_issued
        self._as_issued = {key: c for key, c in as_issued.items() if self._issued.known(key)}
        self._purge_at = max(_PURGE_MIN, 2 * len(self._as_issued))


def warn_expiring(config: AuthConfig, now: float) -> None:
    """A warning for each configured key that expires within `EXPIRY_WARNING_S` (by
    fingerprint): a rotation to finish before its callers are refused."""
    for client in config.clients:
        for key in client.keys:
            expires = key.expires_unix
            if expires is None or expires - now > EXPIRY_WARNING_S:
                continue
            when = "expired" if expires <= now else f"expires in {(expires - now) / 3600:.0f} h"
            log.warning(
                "client %s: key %s %s (%s)",
                client.name,
                key.fingerprint,
                when,
                key.expires.isoformat() if key.expires is not None else "",
            )
