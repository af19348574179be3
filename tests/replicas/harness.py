"""Router replicas on one Redis: configs, a request, and peak concurrency from call records."""

from __future__ import annotations

from typing import Any

from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import CallRecord


def replica_config(fake_url: str, redis_url: str, prefix: str, **sections: Any) -> dict[str, Any]:
    """One provider with two keys on the fake upstream, two groups, state on Redis."""
    config: dict[str, Any] = {
        "providers": {
            "alpha": {"base_url": fake_url, "keys": ["k1", "k2"]},
            "beta": {"base_url": fake_url, "keys": ["kb"]},
        },
        "models": {
            "a": {"deployments": [{"provider": "alpha", "model": "model-a"}]},
            "chain": {
                "deployments": [
                    {"provider": "alpha", "model": "model-a"},
                    {"provider": "beta", "model": "model-b"},
                ]
            },
        },
        "server": {"port": 0},
        "state": {"backend": "redis", "url": redis_url, "prefix": prefix},
    }
    config.update(sections)
    return config


def ask(model: str = "a", session: str = "") -> pb.ChatRequest:
    params = chat_pb2.ChatParams(
        model=model, messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")]
    )
    return pb.ChatRequest(params=params, routing=routing_pb2.RoutingOptions(session_id=session))


def peak_concurrency(records: list[CallRecord]) -> int:
    events = sorted(
        [(r.started_at, 1) for r in records] + [(r.ended_at or 0.0, -1) for r in records]
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak
