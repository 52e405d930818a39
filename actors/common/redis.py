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


async def count_in_window(redis: aioredis.Redis, key: str, window_s: int) -> int:
    """Add one to the count under `key` and return it; the count starts again `window_s`
    after its first one (a fixed window)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_s, nx=True)
        count, _ = await pipe.execute()
    return count
