"""Where the auth interceptor finds a ChatStream's route (its standing and guardrails go there,
and a cache HIT there gives the call's estimate back): the route event, or the route the next
message carries (`route_on_first_message`); a MediaStream's, its route event only."""

from __future__ import annotations

from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth._methods import RULES

CHAT_STREAM = RULES["/switchboard.v1.RouterService/ChatStream"]
MEDIA_STREAM = RULES["/switchboard.v1.RouterService/MediaStream"]
HIT = routing_pb2.RouteInfo(deployment="a/m", cache=routing_pb2.CACHE_STATUS_HIT)


def test_a_chat_streams_route_is_its_route_event_or_the_one_on_its_first_chunks() -> None:
    assert CHAT_STREAM.route is not None and CHAT_STREAM.cached is not None
    event = pb.ChatStreamResponse(route=HIT)
    carried = pb.ChatStreamResponse(chunk=chat_pb2.ChatCompletionChunk(id="c"), first_route=HIT)
    plain = pb.ChatStreamResponse(chunk=chat_pb2.ChatCompletionChunk(id="c"))
    assert CHAT_STREAM.route(event) is event.route
    assert CHAT_STREAM.route(carried) == HIT
    assert CHAT_STREAM.route(plain) is None
    assert CHAT_STREAM.cached(event) and CHAT_STREAM.cached(carried)
    assert not CHAT_STREAM.cached(plain)


def test_a_media_streams_route_is_its_route_event() -> None:
    assert MEDIA_STREAM.route is not None
    event = pb.MediaStreamResponse(route=HIT)
    assert MEDIA_STREAM.route(event) == HIT
    assert MEDIA_STREAM.route(pb.MediaStreamResponse(heartbeat=pb.Heartbeat())) is None
