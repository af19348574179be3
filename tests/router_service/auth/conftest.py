import pytest

from router_service.clock import ManualClock
from tests.replicas.redis_fixtures import redis_prefix, redis_url

__all__ = ["redis_prefix", "redis_url"]


@pytest.fixture
def clock() -> ManualClock:
    """The router's clock, which the throttle tests move."""
    return ManualClock()
