"""The response cache (`cache:`): answers kept in the state store and served to the same
request again, per client, without an upstream call."""

from router_service.cache._cache import CacheLookup, ResponseCache
from router_service.cache._keys import cache_key, route_digest
from router_service.cache._stream import StreamRecorder, replay, shared_stream
from router_service.cache._stream_flights import SlotRenewal

__all__ = [
    "CacheLookup",
    "ResponseCache",
    "SlotRenewal",
    "StreamRecorder",
    "cache_key",
    "replay",
    "route_digest",
    "shared_stream",
]
