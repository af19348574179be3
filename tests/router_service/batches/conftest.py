from tests.replicas.redis_fixtures import private_redis, redis_prefix, redis_proxy, redis_url
from tests.router_service.state.stores import make_store

__all__ = ["make_store", "private_redis", "redis_prefix", "redis_proxy", "redis_url"]
