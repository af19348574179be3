"""A model a key's upstream refused it (MODEL_DENIED): the key is set aside for that model for
`auth_disable_s` (its `cool_name`, which the walk reads as any cooldown: nothing added to a
lease's reads), and the refusal is kept beside it (`deny_name`), so that when every key of the
pool is set aside for the model, the caller is told no key may use it, not to wait a day."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from router_service.errors import SwitchboardError
from router_service.keys._lease import UpstreamKey
from router_service.keys._refusal import Refusal, Unavailable
from router_service.outcomes import Outcome

if TYPE_CHECKING:
    from router_service.keys._pool import KeyPool

__all__ = ["ModelDeniedError", "denied_or", "deny_model"]


class ModelDeniedError(SwitchboardError):
    """Every key of every candidate deployment was refused its model by its upstream
    (MODEL_DENIED): no wait nor retry serves it until an operator grants a key the model. Not
    a 429: the keys' set-aside for the model lasts `auth_disable_s`, a day's Retry-After."""

    grpc_code, http_status = grpc.StatusCode.PERMISSION_DENIED, 403
    reason = Outcome.MODEL_DENIED.name
    openai_type = "permission_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="model_denied")


async def deny_model(pool: KeyPool, key: UpstreamKey, model: str) -> None:
    """Not the key's fault for its other models: only this one is set aside (a key disabled
    whole would pass its model-list probe and fail again on this model)."""
    pool.models_seen[model] = None
    until = pool.clock.now() + pool.cooldowns.auth_disable_s
    await pool.store.extend_deadline(pool.cool_name(key, model), until)
    await pool.store.extend_deadline(pool.deny_name(key, model), until)


async def denied_or(pool: KeyPool, model: str, refusal: Unavailable) -> Unavailable:
    """`Refusal.DENIED` when every key of `pool` was refused `model`, else `refusal` (why no
    key is usable for it: cooling, disabled)."""
    if refusal.reason not in (Refusal.UNHEALTHY, Refusal.DISABLED):
        return refusal
    denials = await pool.store.deadlines([pool.deny_name(k, model) for k in pool.keys])
    return Unavailable(Refusal.DENIED) if all(denials) else refusal
