"""The audit trail: one structured line per authentication attempt on logger `switchboard.audit`.

The fields ride on the record (`extra=`): the JSON formatter writes them as the line's fields,
the text formatter as `key=value` after the message ("auth success"), which is short so that a
JSON line does not carry every field twice (it did, as an escaped JSON message). A key is never
logged: a known one by its client's name and its fingerprint (an issued one with its label too),
an unknown one by fingerprint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Literal

__all__ = ["AuditEvent", "AuditOutcome", "audit", "audited_request_id"]

audit_log = logging.getLogger("switchboard.audit")

# `redacted`: let in with guardrails' finds replaced in its request (`reason` names the rules);
# `answer_redacted`: its answer's finds replaced (the rules), `answer_withheld`: a choice of its
# answer withheld (`guardrail:<rule>:<detector>` of each). Event `guardrail`, not `auth`.
AuditOutcome = Literal[
    "success", "open", "failure", "denied", "redacted", "answer_redacted", "answer_withheld"
]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    outcome: AuditOutcome
    method: str
    peer: str
    client: str | None = None
    key_fingerprint: str | None = None
    key_label: str | None = None
    forwarded_for: str | None = None
    # The caller's own `x-request-id` (`audited_request_id`): what a user quotes.
    request_id: str | None = None
    reason: str | None = None
    event: str = "auth"


def audit(event: AuditEvent) -> None:
    """Log one attempt: INFO when it was let in, WARNING when it was refused.

    On every call's path: nothing is built when the level is off, and the fields are read off
    the slots directly (`dataclasses.asdict` copies recursively and cost more than the rest)."""
    level = logging.INFO if event.outcome in _LET_IN else logging.WARNING
    if not audit_log.isEnabledFor(level):
        return
    logged = {name: value for name in _FIELDS if (value := getattr(event, name)) is not None}
    audit_log.log(level, "%s %s", event.event, event.outcome, extra=logged)


def audited_request_id(value: object) -> str | None:
    """A call's `x-request-id` metadata as its audit line carries it: none longer than the edge
    forwards (1024 characters; gRPC allows printable ASCII only), so a caller calling the router
    directly cannot make lines of any size."""
    return value if isinstance(value, str) and 0 < len(value) <= _REQUEST_ID_CHARS else None


_REQUEST_ID_CHARS = 1024
_LET_IN = frozenset(("success", "open", "redacted", "answer_redacted"))
_FIELDS = tuple(field.name for field in fields(AuditEvent))
