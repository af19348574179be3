"""What every fake OAuth2 token endpoint shares (Google's, Microsoft Entra ID's): the tokens it
issued, each under the label its calls are recorded with, expiring on a clock a test can
replace (a ManualClock's `now`), and the exchanges it granted and refused."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Issued:
    label: str
    expires_at: float


@dataclass
class IssuedTokens:
    """Issued tokens and the record of exchanges. `refuse` holds who may not exchange (a
    client email, a client id): their exchanges fail as a revoked credential's do."""

    clock: Callable[[], float] = time.time
    token_lifetime_s: int = 3600
    issued: dict[str, _Issued] = field(default_factory=dict)
    exchanges: list[str] = field(default_factory=list)  # who got each granted exchange
    refusals: list[str] = field(default_factory=list)  # error_description of each refused one
    refuse: set[str] = field(default_factory=set)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def label_of(self, token: str) -> str | None:
        """The label a live token was issued for; None when it was not issued here, or has
        expired."""
        issued = self.issued.get(token)
        if issued is None or issued.expires_at <= self.clock():
            return None
        return issued.label

    def revoke_all(self) -> None:
        """Every token issued so far stops working (as a rotated credential's do)."""
        self.issued.clear()

    def issue(self, prefix: str, who: str, label: str) -> dict[str, Any]:
        """A new token for `who`, recorded under `label`: the token endpoint's answer."""
        self.exchanges.append(who)
        token = f"{prefix}{next(self._seq)}-{secrets.token_urlsafe(12)}"
        self.issued[token] = _Issued(label, self.clock() + self.token_lifetime_s)
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime_s,
            "access_token": token,
        }
