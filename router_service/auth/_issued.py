"""Client keys issued at run time (AdminService.IssueClientKey): kept in the state store as their
SHA-256 only, mirrored in every replica's memory so that `Authenticator.identify` stays a
synchronous dict lookup (no store round trip per call).

The store holds one log (`client-keys`, a growing document, `state/_log.py`), one JSON event a
line: `issue` (id, client, label, hash, created, expires, and the bound its issuer applied) and
`revoke` (id). Each append is one atomic step, so replicas issuing at once never lose each
other's events, and every replica folds the same lines in the same order into the same set of
keys: an `issue` that finds its client at its bound (in log order) is void everywhere, so the
bound holds across replicas without a lock. After each append the writer lands a flight on the
log's name (on Redis a PUBLISH every replica hears); each replica's follower then reads only the
new lines. A lost notice is caught by a periodic read (`auth.issued_keys_resync_s`, on the
injected clock).

Bounded: the log takes at most `_MAX_LOG_BYTES` (some 15 000 issues and revocations); past it an
issue is refused (ClientKeyLimitError) until the log is cleared by hand (`client-keys` under the
state prefix). On the memory backend the keys live as long as the process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from router_service.clock import Clock
from router_service.config import AuthConfig
from router_service.errors import ClientKeyLimitError, ClientKeyNotFoundError, StoreUnavailableError
from router_service.state import AppendResult, DocumentLines, Landing, StateStore

__all__ = ["ISSUED_PREFIX", "IssuedKey", "IssuedKeys"]

log = logging.getLogger("switchboard.auth")

LOG_NAME = "client-keys"
ISSUED_PREFIX = "sk-sb-"  # an issued key's first characters: an operator tells them apart
_LOG_TTL_S = 20 * 365 * 86400.0  # as long as the store keeps anything (appends keep it)
_MAX_LOG_BYTES = 4 * 1024 * 1024
_UNHEARD_CHECK_S = 1.0  # how often a replica that hears no notices reads the log again


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """One issued key as every replica knows it; never the key itself."""

    id: str
    client: str
    label: str
    fingerprint: str  # `fp_` + 12 hex digits of its SHA-256, as every key is shown
    created_unix: float
    expires_unix: float | None
    digest: bytes  # its SHA-256: what a presented key is looked up by

    def live(self, now: float) -> bool:
        return self.expires_unix is None or now < self.expires_unix


class IssuedKeys:
    """This replica's mirror of the issued keys, and the writes that change them. Shared by
    successive runtimes (a reload keeps it); `start` follows the log, `aclose` stops."""

    def __init__(self, store: StateStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.configured(AuthConfig(open=True))  # its defaults, until a config says more
        self._by_id: dict[str, IssuedKey] = {}
        self._by_digest: dict[bytes, IssuedKey] = {}
        self._lines = DocumentLines(store, LOG_NAME)
        self._reading = asyncio.Lock()
        self._follower: asyncio.Task[None] | None = None
        self.syncs = 0  # reads of the log done (tests wait for the next one)
        self._synced = asyncio.Event()
        # Set while the follower waits for a notice or its period (tests move the clock then).
        self.resting = asyncio.Event()

    def configured(self, config: AuthConfig) -> IssuedKeys:
        """This mirror under a (reloaded) config's bound and resync period."""
        self._max_keys = config.max_issued_keys
        self._resync_s = config.issued_keys_resync_s
        return self

    def find(self, digest: bytes) -> IssuedKey | None:
        """The live issued key with this SHA-256; None when unknown, revoked or expired.

        A dict lookup, not a constant-time scan: what it could leak through timing is how the
        presented key's SHA-256 compares with stored hashes, and an issued key is 32 random
        bytes: knowing its hash, even whole, does not help to find it (no offline guessing, as
        a human-chosen configured key could allow). The scan over configured keys stays."""
        key = self._by_digest.get(digest)
        return key if key is not None and key.live(self._clock.now()) else None

    def listed(self, client: str = "") -> list[IssuedKey]:
        """The live issued keys (of `client` when given), oldest first."""
        now = self._clock.now()
        keys = [k for k in self._by_id.values() if k.live(now) and client in ("", k.client)]
        return sorted(keys, key=lambda k: (k.created_unix, k.id))

    async def issue(self, client: str, label: str, ttl_s: float | None) -> tuple[str, IssuedKey]:
        """A new key for `client` (its clear text, returned here only) and what is kept of it.
        ClientKeyLimitError when the client has `max_issued_keys` live ones already."""
        await self.refresh()
        if len(self.listed(client)) >= self._max_keys:
            raise _at_bound(client, self._max_keys)
        secret = ISSUED_PREFIX + secrets.token_urlsafe(32)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        now = self._clock.now()
        key_id = "ck_" + secrets.token_hex(8)
        event = {
            "op": "issue",
            "id": key_id,
            "client": client,
            "label": label,
            "sha256": digest,
            "created": now,
            "expires": now + ttl_s if ttl_s else None,
            "max": self._max_keys,
        }
        await self._append(event)
        issued = self._by_id.get(key_id)
        if issued is None:  # another replica's issue took the last place first
            raise _at_bound(client, self._max_keys)
        return secret, issued

    async def revoke(self, key_id: str) -> IssuedKey:
        """Refuse the key `key_id` from now on, on every replica; ClientKeyNotFoundError when
        there is no such live key."""
        await self.refresh()
        key = self._by_id.get(key_id)
        if key is None or not key.live(self._clock.now()):
            raise ClientKeyNotFoundError("No issued client key with that id.", param="id")
        await self._append({"op": "revoke", "id": key_id, "at": self._clock.now()})
        return key

    async def _append(self, event: dict[str, Any]) -> None:
        line = orjson.dumps(event) + b"\n"
        done = await self._store.append_document(LOG_NAME, line, max_bytes=_MAX_LOG_BYTES)
        if done is AppendResult.MISSING:  # the first issue: the log starts (one writer wins)
            await self._store.put_document(LOG_NAME, b"", _LOG_TTL_S, only_new=True)
            done = await self._store.append_document(LOG_NAME, line, max_bytes=_MAX_LOG_BYTES)
        if done is not AppendResult.APPENDED:
            raise ClientKeyLimitError(
                "The log of issued client keys is full: no more can be issued or revoked.",
                code="client_key_log_full",
            )
        await self._store.land_flight(LOG_NAME, "", Landing.KEPT)
        await self.refresh()

    async def refresh(self) -> None:
        """Read the lines appended since the last read and fold them in."""
        async with self._reading:
            while True:
                lines = await self._lines.more()
                if lines is None:  # no log (nothing issued yet), or it is gone
                    # Not from a store answering from local state (Redis lost): those known stay.
                    if not self._store.outage_counts().get("degraded"):
                        self._by_id.clear()
                        self._by_digest.clear()
                        self._lines = DocumentLines(self._store, LOG_NAME)
                    break
                for line in lines:
                    try:
                        self._fold(orjson.loads(line))
                    except (ValueError, KeyError, TypeError):  # not ours: left out, not fatal
                        log.warning("issued client keys: a line of the log is not an event")
                if not self._lines.behind:
                    break
            self.syncs += 1
            self._synced.set()
            self._synced = asyncio.Event()

    def _fold(self, event: dict[str, Any]) -> None:
        if event["op"] == "revoke":
            gone = self._by_id.pop(event["id"], None)
            if gone is not None:
                self._by_digest.pop(gone.digest, None)
            return
        created = float(event["created"])
        live = [k for k in self._by_id.values() if k.client == event["client"] and k.live(created)]
        if len(live) >= int(event["max"]):
            return  # issued past the bound by a replica racing another: void on every replica
        digest = bytes.fromhex(event["sha256"])
        key = IssuedKey(
            id=event["id"],
            client=event["client"],
            label=event["label"],
            fingerprint="fp_" + event["sha256"][:12],
            created_unix=created,
            expires_unix=event["expires"],
            digest=digest,
        )
        self._by_id[key.id] = key
        self._by_digest[digest] = key

    async def synced(self, after: int) -> None:
        """Return once the log was read more than `after` times (tests: `syncs` before)."""
        while self.syncs <= after:
            await self._synced.wait()

    def start(self) -> None:
        """Follow the log from now on (idempotent)."""
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow(), name="switchboard-client-keys")

    async def _follow(self) -> None:
        with self._store.watch_flight(LOG_NAME) as watch:
            while True:
                hearing = await self._store.hear_flights()
                watch.rearm()  # a notice from here on wakes the wait below
                try:
                    await self.refresh()
                except StoreUnavailableError as exc:  # kept as known; read again on the timer
                    log.warning("issued client keys not read (%s): the last ones read apply", exc)
                wait_s = self._resync_s if hearing else min(self._resync_s, _UNHEARD_CHECK_S)
                await self._rest(watch.notified(wait_s), self._clock.wait(wait_s))

    async def _rest(self, *waits: Any) -> None:
        """Wait until the first of `waits` ends (a notice, or the resync period on the clock)."""
        tasks = [asyncio.ensure_future(wait) for wait in waits]
        try:
            await asyncio.sleep(0)  # each wait has begun (a ManualClock knows its waiter)
            self.resting.set()
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.resting.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            # wait() does not re-raise the task's CancelledError, but does raise our own.
            await asyncio.wait((follower,))


def _at_bound(client: str, bound: int) -> ClientKeyLimitError:
    return ClientKeyLimitError(
        f"Client '{client}' has {bound} issued keys (auth.max_issued_keys): revoke one first.",
        code="client_key_limit",
    )
