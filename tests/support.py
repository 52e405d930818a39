"""Helpers of every kind of test: bounded waits (one for plain code, one for the event
loop) and a test's own Redis keys removed from the shared Redis."""

import asyncio
import time
from collections.abc import Awaitable, Callable

from actors.common.redis import create_redis


def wait_for(check, what: str, timeout_s: float = 15):
    """Poll `check` until it gives something true and return that; fail after `timeout_s`
    (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.1)
    return result


async def wait_until(check: Callable[[], Awaitable[bool] | bool], *, timeout_s: float = 30, what: str = "") -> None:
    """Poll `check` (plain or async) on the event loop until it is true; fail after
    `timeout_s` (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or check}")
        await asyncio.sleep(0.05)


async def remove_redis_keys(redis_url: str, namespace: str) -> None:
    """Remove every key under `namespace` (a test's own prefix on the shared Redis)."""
    client = create_redis(redis_url, timeout_s=10)
    try:
        async for key in client.scan_iter(match=f"{namespace}:*"):
            await client.delete(key)
    finally:
        await client.aclose()
