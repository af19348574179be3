"""Guessed keys, throttled at the router's door, by the caller's address (`TrustedProxies`:
the peer's, or what a trusted proxy's `x-forwarded-for` names), asked before the key is looked
up. Each service's wrong keys count against its own limits: AdminService's against
`auth.admin_throttle` (per address and overall), every other's against `auth.key_throttle` (per
address only); an address past the key limit is refused on every service, AdminService too.

A key holding the `admin` scope on a method whose scope it lacks is answered as an unknown key
(`AdminKeyOutOfScopeError`) and counted as one, against this service's limits only: counted in
the admin throttle too, it would lock its address (or all) out of AdminService where an unknown
key does not, and a keyless AdminService call (refused first past a limit) would tell a guesser
which of its guesses was the admin key. Told nothing, a guesser on another service must still
try each candidate on AdminService, under its overall limit. What is no guess, and not counted:
a missing key; any other known key without the method's scope (PERMISSION_DENIED, which tells a
misconfigured app what is wrong: such a key answers on a service of its scope anyway, and a real
client that lacks a scope must not lock its neighbours out). A right admin key clears its
address's admin count; the key throttle's windows run out on their own, else a caller with a
key of its own could guess on forever between its own calls.
"""

from __future__ import annotations

from router_service._throttle import (
    KEY_THROTTLED,
    AdminThrottle,
    KeyThrottle,
    Refusal,
    TrustedProxies,
)
from router_service.auth import Attempt, Caller, Gate, MethodRule
from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.config import AuthConfig
from router_service.errors import AuthenticationError, ClientRateLimitedError

__all__ = ["KeyThrottledError", "Throttles", "throttled"]


class Throttles:
    def __init__(self, config: AuthConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        # Kept across reloads (an attacker's count goes on); `configure` changes the limits.
        self.admin = AdminThrottle(config.admin_throttle, clock, "router")
        self.keys = KeyThrottle(config.key_throttle, clock)
        self._proxies = TrustedProxies(config.trusted_proxies)

    def configure(self, config: AuthConfig) -> None:
        """A reloaded config's limits and proxies; the failures counted so far stay."""
        self.admin.configure(config.admin_throttle)
        self.keys.configure(config.key_throttle)
        self._proxies = TrustedProxies(config.trusted_proxies)

    def authenticate(self, gate: Gate, attempt: Attempt, rule: MethodRule) -> Caller:
        """The gate's caller, unless the caller's address is past a limit: then refused
        (`throttled`) before its key is looked up, the right key too."""
        admin = rule.scope == "admin"
        counting = self.admin if admin else self.keys  # this method's wrong keys
        address = None
        # No failure kept, no address refused: the common call resolves no address.
        if admin or len(self.keys):
            address = self._address(attempt)
            refusal = self.admin.refusal(address) if admin else None
            if refusal is not None:
                raise throttled(refusal)
            refusal = self.keys.refusal(address)
            if refusal is not None:
                raise throttled(refusal, KeyThrottledError)
        try:
            caller = gate.authenticate(attempt, rule)
        except AuthenticationError as exc:
            if exc.code != "missing_api_key":  # no guess
                address = address or self._address(attempt)
                counting.failed(address, attempt.request_id)
            raise
        if admin and address is not None:
            self.admin.succeeded(address)
        return caller

    def _address(self, attempt: Attempt) -> str:
        return self._proxies.caller_address(attempt.peer, attempt.forwarded_for)


class KeyThrottledError(ClientRateLimitedError):
    """Refused unread: the caller's address sent too many unknown client keys
    (`auth.key_throttle`), whatever key it sent this time."""

    reason = KEY_THROTTLED


def throttled(
    refusal: Refusal, kind: type[ClientRateLimitedError] = ClientRateLimitedError
) -> ClientRateLimitedError:
    """The typed error of a call refused unread: RESOURCE_EXHAUSTED with RetryInfo (HTTP 429
    with Retry-After through the edge)."""
    error = kind(refusal.message, retry_after_s=refusal.retry_after_s)
    error.code = "too_many_failed_authentications"
    return error
