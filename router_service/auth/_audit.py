"""The audit trail: one structured line per authentication attempt on logger `switchboard.audit`.

The message is a JSON object and the same fields ride on the record (`extra=`), for JSON log
handlers. A key is never logged: a known one by its client's name, an unknown one by fingerprint.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Literal

__all__ = ["AuditEvent", "AuditOutcome", "audit"]

audit_log = logging.getLogger("switchboard.audit")

AuditOutcome = Literal["success", "open", "failure", "denied"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    outcome: AuditOutcome
    method: str
    peer: str
    client: str | None = None
    key_fingerprint: str | None = None
    forwarded_for: str | None = None
    reason: str | None = None
    event: str = "auth"


def audit(event: AuditEvent) -> None:
    """Log one attempt: INFO when it was let in, WARNING when it was refused."""
    fields = {key: value for key, value in asdict(event).items() if value is not None}
    level = logging.INFO if event.outcome in ("success", "open") else logging.WARNING
    audit_log.log(level, json.dumps(fields, separators=(",", ":")), extra=fields)
