"""Callers of the router: client keys (hashed), scopes, allowed models, per-client limits, audit.

Enforced for gRPC and HTTP callers alike by the server's interceptor
(`router_service/server/_interceptors.py`), which feeds every guarded call through a `Gate`:

    gate = Gate(config.auth, store, max_tokens_ceiling=..., known_model=...)
    caller = gate.authenticate(Attempt(method, authorization, peer), rule_for(method))
    admission = await gate.admit(attempt, caller, rule, request)   # ... serve ...
    await admission.close()

A servicer reads the caller of the RPC it serves with `current_caller()`.
"""

from router_service.auth._audit import AuditEvent, audit, audited_request_id
from router_service.auth._bounds import check_max_tokens
from router_service.auth._budgets import BudgetReading, Budgets, BudgetStanding
from router_service.auth._callers import (
    ANONYMOUS,
    AdminKeyOutOfScopeError,
    Authenticator,
    Caller,
    bearer_token,
    current_caller,
    hash_key,
    set_current_caller,
    unknown_key_error,
)
from router_service.auth._client_secrets import ClientSecretAsk, client_secret_ask
from router_service.auth._gate import (
    Admission,
    Attempt,
    Gate,
    current_admission,
    current_stream_admission,
    set_current_admission,
)
from router_service.auth._issued import (
    EPHEMERAL_PREFIX,
    ISSUED_PREFIX,
    IssuedKey,
    IssuedKeys,
    RealtimeGrant,
)
from router_service.auth._limits import (
    CallerLimits,
    LimitStanding,
    RateStatus,
    RateTicket,
    current_standing,
    set_current_standing,
)
from router_service.auth._methods import (
    ADMIN_SERVICE,
    ROUTER_SERVICE,
    RULES,
    MethodRule,
    rule_for,
)

__all__ = [
    "ADMIN_SERVICE",
    "ANONYMOUS",
    "EPHEMERAL_PREFIX",
    "ISSUED_PREFIX",
    "ROUTER_SERVICE",
    "RULES",
    "AdminKeyOutOfScopeError",
    "Admission",
    "Attempt",
    "AuditEvent",
    "Authenticator",
    "BudgetReading",
    "BudgetStanding",
    "Budgets",
    "Caller",
    "CallerLimits",
    "ClientSecretAsk",
    "Gate",
    "IssuedKey",
    "IssuedKeys",
    "LimitStanding",
    "MethodRule",
    "RateStatus",
    "RateTicket",
    "RealtimeGrant",
    "audit",
    "audited_request_id",
    "bearer_token",
    "check_max_tokens",
    "client_secret_ask",
    "current_admission",
    "current_caller",
    "current_standing",
    "current_stream_admission",
    "hash_key",
    "rule_for",
    "set_current_admission",
    "set_current_caller",
    "set_current_standing",
    "unknown_key_error",
]
