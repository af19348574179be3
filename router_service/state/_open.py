"""open_store: the StateStore a config names (memory, or Redis behind a local fallback)."""

from __future__ import annotations

import logging

from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.config import StateConfig
from router_service.state._base import StateStore, StoreUnavailableError
from router_service.state._memory import MemoryStateStore
from router_service.state._resilient import ResilientStateStore

__all__ = ["open_store"]

log = logging.getLogger("switchboard.state")


async def open_store(
    config: StateConfig, clock: Clock = SYSTEM_CLOCK, *, reply_clock: Clock | None = None
) -> StateStore:
    """The store `config` names: memory, or Redis with a local fallback. An unreachable Redis at
    start is not fatal: the replica starts on local state and joins the others when it can.
    `reply_clock`: what Redis replies are timed on (None: the event loop's clock; a test gives
    a ManualClock to say when a reply held back has waited too long)."""
    if config.backend == "memory":
        return MemoryStateStore(clock, document_bytes=config.memory_document_bytes)
    # Imported here: nothing of the Redis store is loaded by processes that never use it (the
    # default, memory backend).
    from router_service.state._redis import RedisStateStore
    from router_service.state._resp_wire import redacted

    assert config.url is not None  # the config validator requires it
    url = config.url.get_secret_value()
    shared = RedisStateStore.from_url(
        url,
        prefix=config.prefix,
        clock=clock,
        pool_size=config.pool_size,
        socket_timeout_s=config.socket_timeout_s,
        connect_timeout_s=config.connect_timeout_s,
        read_cache=config.read_cache,
        reply_clock=reply_clock,
    )
    store = ResilientStateStore(
        shared,
        MemoryStateStore(clock, document_bytes=config.memory_document_bytes),
        clock=clock,
        retry_interval_s=config.retry_interval_s,
        name=f"redis {redacted(url)} (prefix {config.prefix!r})",
    )
    try:
        await shared.ping()
    except StoreUnavailableError as exc:
        store.mark_down(exc)
    else:
        log.info("shared state on %s", store.name)
    return store
