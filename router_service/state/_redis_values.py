"""Values on Redis (`{prefix}:val:{name}`, a string "expiry|value"): RedisStateStore's value
calls, apart so that the store's module stays one screenful per kind. Read through the read
cache; the expiry is written beside the value (the replicas' clock decides) and Redis's own TTL,
a little later, removes the key."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from router_service.clock import Clock
from router_service.state._redis_entries import live_values, translated, ttl_px
from router_service.state._resp import RespClient

__all__ = ["RedisValues"]

# KEYS: value ("expiry|value"), deadline. ARGV: now, the new entry, its TTL in ms, '1' when
# it may replace no value (absent, expired), then the values it may replace
# -> 1 written | 0 not (the deadline in force, or another value).
_SET_VALUE_IF = """
local now = tonumber(ARGV[1])
local untl = redis.call('GET', KEYS[2])
if untl and tonumber(untl) > now then return 0 end
local entry = redis.call('GET', KEYS[1])
local bar = entry and string.find(entry, '|', 1, true)
local live = bar and tonumber(string.sub(entry, 1, bar - 1)) > now
local found = (not live) and ARGV[4] == '1'
for i = 5, #ARGV do
  if live and ARGV[i] == string.sub(entry, bar + 1) then found = true end
end
if not found then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


class RedisValues:
    """The value part of RedisStateStore (a mixin: it shares the store's client and cache)."""

    _client: RespClient
    _clock: Clock

    def _key(self, kind: str, name: str) -> str:
        raise NotImplementedError

    def _writing(self, key: str) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def _mget(self, keys: list[str]) -> tuple[list[str | None], list[Any]]:
        raise NotImplementedError

    def _init_values(self, client: RespClient) -> None:
        self._set_value_if = client.script(_SET_VALUE_IF)

    async def set_value(self, name: str, value: str, ttl_s: float) -> None:
        entry = f"{self._clock.now() + ttl_s!r}|{value}"
        key = self._key("val", name)
        with translated():
            async with self._writing(key):
                await self._client.execute("SET", key, entry, "PX", ttl_px(ttl_s))

    async def get_values(self, names: Sequence[str]) -> list[str | None]:
        if not names:
            return []
        with translated():
            stored, _ = await self._mget([self._key("val", n) for n in names])
        return live_values(stored, self._clock.now())

    async def set_value_if(
        self, name: str, value: str, ttl_s: float, *, was: Collection[str | None], unless: str
    ) -> bool:
        now = self._clock.now()
        entry = f"{now + ttl_s!r}|{value}"
        key = self._key("val", name)
        values = [v for v in was if v is not None]
        args: list[str | int] = [repr(now), entry, ttl_px(ttl_s), int(None in was), *values]
        with translated():
            async with self._writing(key):
                written = await self._set_value_if([key, self._key("dl", unless)], args)
        return bool(int(written))
