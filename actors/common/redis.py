"""Redis (sessions, revocations, counters, caches) with short timeouts: a Redis that does
not answer must slow a request by milliseconds, not seconds."""

import redis.asyncio as aioredis
from redis.exceptions import RedisError

REDIS_ERRORS = (RedisError, OSError, TimeoutError)


def create_redis(url: str, *, timeout_s: float = 0.5) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry_on_timeout=False,
        decode_responses=True,
        health_check_interval=10,
    )
