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
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from router_service.clock import Clock
from router_service.engine._model import Deployment, RequestContext
from router_service.keys import KeyLease, UpstreamKey
from router_service.sessions import ActiveMark

if TYPE_CHECKING:
    from router_service.engine._attempts import AttemptRunner

# The record outlives its lease by this share of the TTL: the picking replica's sweep (every
# quarter of the TTL at most) then tells a lease reported elsewhere from one never reported.
_KEPT_PAST = 0.5


# What a record becomes once a report took it (until it expires): on another replica than the
# one that picked it (TAKEN); on the picking one, its report or its sweep (TAKEN_HERE), which
# that one, asking again (its reply lost to a cancellation or a cut), does not read as another's.
# Neither is a record any version reads.
TAKEN = b"taken"
TAKEN_HERE = b"taken:picker"


@dataclass(slots=True)
class RouteLease:
    """A picked route, outstanding until reported or expired (`RouteLeases`)."""

    lease_id: str
    deployment: Deployment
    lease: KeyLease
    ctx: RequestContext
    stack: AsyncExitStack  # gives back the key slot and the session mark
    expires_at: float
    record: bytes = b""  # as kept in the store (`_route_records.py`); b"": another replica's
    group: str = ""  # the model its caller asked for; "": unknown (an older replica's record)
    # Its report taken while the store could not tell whether another replica took it first.
    unsure: bool = False
    # What it counts as once the store can tell (`_count`): unreported, or that report's.
    counted: tuple[str, int | None] = ("UNKNOWN", None)


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


def route_taken_over(
    lease_id: str,
    record: RouteRecord,
    deployment: Deployment,
    key: UpstreamKey,
    runner: AttemptRunner,
    clock: Clock,
) -> RouteLease:
    """The route another replica picked, as its `record` keeps it, for the report that takes it
    here: what it holds in the store (the key's slot, the session's shared mark) is given back
    from here by its stack."""
    stack = AsyncExitStack()
    stack.push_async_callback(runner.store.release, deployment.pool.slot_name(key), record.slot)
    if record.mark is not None:
        stack.push_async_callback(runner.sessions.leave, record.mark)
    lease = KeyLease(
        deployment.pool, key, record.model, record.slot, window=record.window, tokens=record.tokens
    )
    # The model its caller asked for: its session's sticky choice for that model.
    model = record.group or deployment.name  # an older version's record names none
    ctx = RequestContext(model, clock, session_id=record.session, client=record.client)
    return RouteLease(
        lease_id, deployment, lease, ctx, stack, record.expires_at, group=record.group
    )
