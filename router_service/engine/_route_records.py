"""A picked route as the state store keeps it, so that any replica can take its report: a
service behind a load balancer reports to whichever replica its call reaches, not the one that
picked (that one's table alone refused the report, and the key's slot stayed held until the
lease's TTL, its outcome lost).

The record names what the report needs: the deployment and key (by fingerprint), the key's
slot and rate window, and the session's mark. It is kept under a hash of the lease id (the id
is what lets a caller report; no reader of the store learns it), for a little longer than the
lease, and taken by whoever reports first: taking replaces it by a mark (`TAKEN`) only if it is
still the record (one atomic step), so a lease is reported once, on one replica, and the
picking replica tells a lease reported elsewhere from a record the store lost."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from router_service.sessions import ActiveMark

# The record outlives its lease by this share of the TTL: the picking replica's sweep (every
# quarter of the TTL at most) then tells a lease reported elsewhere from one never reported.
_KEPT_PAST = 0.5


# What a record becomes once a report took it (until it expires): on another replica than the
# one that picked it (TAKEN); on the picking one, its report or its sweep (TAKEN_HERE), which
# that one, asking again (its reply lost to a cancellation or a cut), does not read as another's.
# Neither is a record any version reads.
TAKEN = b"taken"
TAKEN_HERE = b"taken:picker"


def record_name(lease_id: str) -> str:
    """The store's name of a route's record: a hash of its lease id, never the id."""
    return "route:" + hashlib.sha256(lease_id.encode()).hexdigest()[:32]


def record_ttl(ttl_s: float) -> float:
    return ttl_s * (1 + _KEPT_PAST)


def record_ttl_past(ttl_s: float) -> float:
    """How long a route's record outlives its lease."""
    return ttl_s * _KEPT_PAST


@dataclass(frozen=True, slots=True)
class RouteRecord:
    deployment: str
    key: str  # fingerprint
    model: str
    slot: str  # the key slot's lease id in the store
    window: int
    tokens: int
    session: str
    client: str
    expires_at: float
    mark: ActiveMark | None  # the session's mark, when the shared store holds it
    group: str = ""  # the model its caller asked for (the metrics' model group); "": unknown

    def encode(self) -> bytes:
        mark = self.mark
        fields: dict[str, Any] = {
            "d": self.deployment,
            "k": self.key,
            "m": self.model,
            "s": self.slot,
            "w": self.window,
            "t": self.tokens,
            "se": self.session,
            "c": self.client,
            "x": self.expires_at,
            "mk": None if mark is None else [mark.group, mark.session, mark.token],
            "g": self.group,
        }
        return orjson.dumps(fields)

    @classmethod
    def decode(cls, data: bytes) -> RouteRecord | None:
        """None for a record this version cannot read (written by another)."""
        try:
            fields = orjson.loads(data)
            group, session, token = (str(part) for part in fields["mk"] or ("", "", ""))
            return cls(
                deployment=str(fields["d"]),
                key=str(fields["k"]),
                model=str(fields["m"]),
                slot=str(fields["s"]),
                window=int(fields["w"]),
                tokens=int(fields["t"]),
                session=str(fields["se"]),
                client=str(fields["c"]),
                expires_at=float(fields["x"]),
                mark=ActiveMark(group, session, token) if token else None,
                group=str(fields.get("g", "")),  # absent in an older version's record
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
