"""Counts on Redis (`{prefix}:cnt:{name}`, a string "expiry|total|last|first counted at"):
RedisStateStore's count calls and their scripts, apart so that the store's module stays one
screenful per kind."""

from __future__ import annotations

from router_service.clock import Clock
from router_service.state._redis_entries import translated, ttl_px
from router_service.state._resp import RespClient

__all__ = ["RedisCounts"]

# One count's fields, as stored (an entry of before there were four: counted at 0).
_FIELDS = """
local function fields(entry)
  local expiry, total, last, began = string.match(entry, '^([^|]*)|([^|]*)|?([^|]*)|?(.*)$')
  return tonumber(expiry), tonumber(total), tonumber(last) or 0, began
end
"""

# KEYS: count. ARGV: now, new expiry, px, restart if first counted before -> the new total (a
# count past its expiry by the callers' clock, or whose streak began before a success the
# caller saw, counts from 0; Redis's own TTL ends it a little later).
ADD_COUNT = f"""{_FIELDS}
local entry = redis.call('GET', KEYS[1])
local total, began = 0, ARGV[1]
if entry then
  local expiry, count, _, first = fields(entry)
  if expiry > tonumber(ARGV[1]) and (tonumber(first) or 0) >= tonumber(ARGV[4]) then
    total, began = count, first
  end
end
total = total + 1
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. total .. '|' .. ARGV[1] .. '|' .. began, 'PX', ARGV[3])
return total
"""

# KEYS: count. ARGV: up to -> 1 when it went (last counted at or before `up to`), else 0.
CLEAR_COUNT = f"""{_FIELDS}
local entry = redis.call('GET', KEYS[1])
if not entry then return 0 end
local _, _, last = fields(entry)
if last > tonumber(ARGV[1]) then return 0 end
return redis.call('DEL', KEYS[1])
"""


class RedisCounts:
    """The count part of RedisStateStore (a mixin: it shares the store's client)."""

    _client: RespClient
    _clock: Clock

    def _key(self, kind: str, name: str) -> str:
        raise NotImplementedError

    def _init_counts(self, client: RespClient) -> None:
        self._add_count = client.script(ADD_COUNT)
        self._clear_count = client.script(CLEAR_COUNT)

    async def add_count(self, name: str, ttl_s: float, *, restart_if_before: float = 0.0) -> int:
        now = self._clock.now()
        args: list[str | int] = [
            repr(now),
            repr(now + ttl_s),
            ttl_px(ttl_s),
            repr(restart_if_before),
        ]
        with translated():
            total = await self._add_count([self._key("cnt", name)], args)
        return int(total)

    async def clear_count(self, name: str, *, up_to: float | None = None) -> None:
        with translated():
            if up_to is None:
                await self._client.execute("DEL", self._key("cnt", name))
            else:
                await self._clear_count([self._key("cnt", name)], [repr(up_to)])
