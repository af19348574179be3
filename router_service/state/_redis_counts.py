"""Counts on Redis (`{prefix}:cnt:{name}`, a string "expiry|total"): RedisStateStore's count
calls, apart so that the store's module stays one screenful per kind."""

from __future__ import annotations

from router_service.clock import Clock
from router_service.state import _redis_scripts as lua
from router_service.state._redis_entries import translated, ttl_px
from router_service.state._resp import RespClient

__all__ = ["RedisCounts"]


class RedisCounts:
    """The count part of RedisStateStore (a mixin: it shares the store's client)."""

    _client: RespClient
    _clock: Clock

    def _key(self, kind: str, name: str) -> str:
        raise NotImplementedError

    def _init_counts(self, client: RespClient) -> None:
        self._add_count = client.script(lua.ADD_COUNT)

    async def add_count(self, name: str, ttl_s: float) -> int:
        args: list[str | int] = [repr(self._clock.now()), repr(self._clock.now() + ttl_s)]
        with translated():
            total = await self._add_count([self._key("cnt", name)], [*args, ttl_px(ttl_s)])
        return int(total)

    async def clear_count(self, name: str) -> None:
        with translated():
            await self._client.execute("DEL", self._key("cnt", name))
