from tests.replicas.harness import replicas
from tests.replicas.redis_fixtures import private_redis, redis_prefix, redis_proxy, redis_url

__all__ = ["private_redis", "redis_prefix", "redis_proxy", "redis_url", "replicas"]
