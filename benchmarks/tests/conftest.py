from tests.replicas.redis_fixtures import redis_url

__all__ = ["redis_url"]
