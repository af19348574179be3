from tests.replicas.redis_fixtures import redis_prefix, redis_url

__all__ = ["redis_prefix", "redis_url"]
