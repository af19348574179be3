"""Routing statistics' buckets on Redis (`{prefix}:bkt:{name}`, a hash "bucket|field" ->
total, and `{prefix}:bkti:{name}`, a zset bucket -> expiry): RedisStateStore's bucket calls,
apart so that the store's module stays one screenful per kind."""

from __future__ import annotations

from collections.abc import Sequence

from router_service.clock import Clock
from router_service.state import _redis_scripts as lua
from router_service.state._redis_entries import SLACK_MS, live_buckets, translated
from router_service.state._resp import RespClient
from router_service.state._resp_wire import checked, pairs

__all__ = ["RedisBuckets"]


class RedisBuckets:
    """The bucket part of RedisStateStore (a mixin: it shares the store's client)."""

    _client: RespClient
    _clock: Clock

    def _key(self, kind: str, name: str) -> str:
        raise NotImplementedError

    def _init_buckets(self, client: RespClient) -> None:
        self._add_to_bucket = client.script(lua.ADD_TO_BUCKET)

    async def add_to_bucket(
        self, name: str, bucket: int, counts: dict[str, float], ttl_s: float, *, at: str = ""
    ) -> str:
        args: list[str | int] = [
            repr(self._clock.now()),
            str(bucket),
            repr(float(ttl_s)),
            SLACK_MS,
        ]
        for field, value in counts.items():
            args += [field, repr(float(value))]
        keys = [self._key("bkt", name), self._key("bkti", name)]
        with translated():
            await self._add_to_bucket(keys, args)
        return "redis"

    async def read_buckets(self, names: Sequence[str]) -> list[dict[int, dict[str, float]]]:
        if not names:
            return []
        commands: list[tuple[str, ...]] = []
        for name in names:
            commands.append(("HGETALL", self._key("bkt", name)))
            commands.append(("ZRANGE", self._key("bkti", name), "0", "-1", "WITHSCORES"))
        with translated():
            replies = checked(await self._client.pipeline(commands))
        return [live_buckets(fields, index, self._clock.now()) for fields, index in pairs(replies)]
