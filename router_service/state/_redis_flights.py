"""Flights on Redis: RedisStateStore's flight calls and the subscriber that hears landings.

    {prefix}:flt:{name}   string "expiry|token"   (a flight's lease; the callers' clock decides,
                                                   Redis's TTL a second later cleans up)
    {prefix}:flights      channel                 "landing|token|name", one per landing

A claim is one script (take the lease unless a live one holds it; else the holder and its
expiry); a renewal is one script (a new expiry and TTL, only while the lease is the token's); a
landing is one script (drop the lease if it is the owner's, PUBLISH the notice).
Each replica hears every landing on one subscriber connection of its own (`FlightNotices`),
made by the first claim and kept: a claim waits for it first, so a follower is subscribed
before its claim reaches Redis, and the notice of any landing after the claim reaches it. Its
loss tells every watcher LAPSED (they go upstream themselves); the next claim makes a new one.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from router_service.clock import Clock
from router_service.state import _redis_scripts as lua
from router_service.state._flights import FlightBoard, FlightClaim, FlightWatch, Landing
from router_service.state._redis_entries import passing, translated, ttl_px
from router_service.state._resp import RespClient, replies
from router_service.state._resp_wire import Command, RedisReplyError, first_error

if TYPE_CHECKING:
    from router_service.state._resp import _Connection

__all__ = ["FlightNotices", "RedisFlights"]

log = logging.getLogger("switchboard.state")

# KEYS: a flight's lease. ARGV: token, "expiry|token", PX -> 1 renewed, 0 not the token's lease.
# Here, not in `_redis_scripts.py`, as the flights' other Redis-only part: that one is full.
_RENEW_FLIGHT = """
local held = redis.call('GET', KEYS[1])
if held and string.match(held, '^[^|]*|(.*)$') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

_RETRY_S = 1.0  # after a subscriber could not be made
# The subscriber is PINGed this often: a connection dropped on the way without a reset (an idle
# timeout in a load balancer or a NAT) only receives, so nothing else would ever notice it.
_PING_S = 5.0


class FlightNotices:
    """The replica's subscriber to the landings channel; tells each to the board's watches."""

    def __init__(self, client: RespClient, channel: str, board: FlightBoard, clock: Clock) -> None:
        self._client = client
        self.channel = channel
        self._board = board
        self._clock = clock
        self._subscriber: _Connection | None = None
        self._subscribing = asyncio.Lock()
        self._retry_at = 0.0  # no new attempt before this monotonic instant
        self._refused = False
        self._pinger: asyncio.Task[None] | None = None
        self.heard = 0  # notices received since start

    @property
    def connected(self) -> bool:
        return self._subscriber is not None and self._subscriber.broken is None

    async def subscribed(self) -> bool:
        """Whether landings are heard from now on (subscribing first if needed)."""
        if self.connected:
            return True
        async with self._subscribing:
            if self.connected:
                return True
            if self._clock.monotonic() < self._retry_at:
                return False
            try:
                subscriber = await self._client.dedicated()
            except (OSError, RedisReplyError):  # unreachable, timed out, AUTH refused
                self._retry_at = self._clock.monotonic() + _RETRY_S
                return False
            subscriber.on_push = self._message
            try:
                refused = first_error(await replies(subscriber.send([("SUBSCRIBE", self.channel)])))
            except BaseException as exc:  # lost, timed out or cancelled: the connection goes too
                subscriber.close()
                if not isinstance(exc, OSError):
                    raise
                self._retry_at = self._clock.monotonic() + _RETRY_S  # not heard: go alone
                return False
            if refused is not None:
                subscriber.close()
                self._retry_at = self._clock.monotonic() + _RETRY_S
                if passing(refused):  # a full or busy Redis (its greeting read as the reply)
                    return False
                if not self._refused:
                    log.warning("redis refused SUBSCRIBE (%s): flights are not shared", refused)
                self._refused = True
                return False
            if self._client.closed:  # the store closed meanwhile: nobody would close this one
                subscriber.close()
                return False
            subscriber.on_lost = self._board.lapse_all
            self._subscriber = subscriber
            if self._pinger is not None:  # the lost one's, if still asleep
                self._pinger.cancel()
            self._pinger = asyncio.create_task(self._ping(subscriber), name="switchboard-pings")
            return True

    async def _ping(self, subscriber: _Connection) -> None:
        """PING `subscriber` every `_PING_S` while it lasts: a reply overdue aborts it (its
        watchdog), which lapses every watch, and the next claim subscribes anew."""
        while subscriber.broken is None:
            await asyncio.sleep(_PING_S)
            try:
                (reply,) = await replies(subscriber.send([("PING",)]))
            except OSError:  # lost, or no reply in time: the connection is aborted
                return
            self._message(reply)  # a notice that arrived before the PONG took its place

    def _message(self, message: Any) -> None:
        if not (isinstance(message, list) and len(message) == 3 and message[0] == "message"):
            return
        landing, _, rest = str(message[2]).partition("|")
        token, _, name = rest.partition("|")
        try:
            heard = Landing(landing)
        except ValueError:  # not ours (a foreign publisher on the channel)
            return
        self.heard += 1
        self._board.announce(name, token, heard)

    def aclose(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
        subscriber, self._subscriber = self._subscriber, None
        if subscriber is not None:
            subscriber.close()  # its loss lapses every watch still open


class RedisFlights:
    """The flight half of RedisStateStore (a mixin: it shares the store's client)."""

    _client: RespClient
    _clock: Clock

    def _key(self, kind: str, name: str) -> str:
        raise NotImplementedError

    def _new_id(self) -> str:
        raise NotImplementedError

    def _init_flights(self, client: RespClient) -> None:
        self._claim_flight = client.script(lua.CLAIM_FLIGHT)
        self._land_flight = client.script(lua.LAND_FLIGHT)
        self._renew_flight = client.script(_RENEW_FLIGHT)
        self.flight_board = FlightBoard(self._clock)
        self.notices = FlightNotices(
            client, self._key("flights", "").rstrip(":"), self.flight_board, self._clock
        )

    def watch_flight(self, name: str) -> AbstractContextManager[FlightWatch]:
        return self.flight_board.watch(name)

    async def hear_flights(self) -> bool:
        return await self.notices.subscribed()

    async def claim_flight(self, name: str, ttl_s: float) -> FlightClaim:
        hearing = await self.notices.subscribed()
        token, now = self._new_id(), self._clock.now()
        key = self._key("flt", name)
        # A caller gone before the reply (or a reply lost with its connection): a lease Redis
        # may have granted is landed EMPTY at once (or once Redis answers), not left to its TTL.
        undo: list[Command] = [("EVAL", lua.LAND_FLIGHT, 1, *self._landing(name, token))]
        args: list[str | int] = [f"{now + ttl_s!r}|{token}", ttl_px(ttl_s), repr(now)]
        with translated(lambda: self.land_flight(name, token, Landing.EMPTY)):
            reply = await self._claim_flight([key], args, undo=undo)
        if int(reply[0]) == 1:
            return FlightClaim(token)
        left_s = float(reply[2]) - now if hearing else 0.0
        return FlightClaim(None, str(reply[1]), left_s)

    async def land_flight(self, name: str, token: str, landing: Landing) -> None:
        key, *args = self._landing(name, token, landing)
        with translated():
            await self._land_flight([key], args)

    async def renew_flight(self, name: str, token: str, ttl_s: float) -> bool:
        args: list[str | int] = [token, f"{self._clock.now() + ttl_s!r}|{token}", ttl_px(ttl_s)]
        with translated():
            return int(await self._renew_flight([self._key("flt", name)], args)) == 1

    async def flight_left(self, name: str, token: str) -> float:
        with translated():
            held = await self._client.execute("GET", self._key("flt", name))
        expiry, _, holder = str(held or "").partition("|")
        if holder != token:
            return 0.0
        return max(0.0, float(expiry) - self._clock.now())

    def _landing(self, name: str, token: str, landing: Landing = Landing.EMPTY) -> list[str]:
        """The LAND_FLIGHT script's key and arguments."""
        notice = f"{landing.value}|{token}|{name}"
        return [self._key("flt", name), token, self.notices.channel, notice]
