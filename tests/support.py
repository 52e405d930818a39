"""Helpers of every kind of test: bounded waits (one for plain code, one for the event
loop), a test's own Redis keys removed from the shared Redis, and a Set-Cookie read."""

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


def set_cookie(response, name: str) -> dict[str, str | bool]:
    """The one Set-Cookie of `response` (an httpx answer) for cookie `name`: {"value": ...,
    each attribute by its lower-case name: its value, or True for a flag such as HttpOnly}."""
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    first, *attributes = [part.strip() for part in header.split(";")]
    cookie: dict[str, str | bool] = {"value": first.partition("=")[2].strip('"')}  # a cleared one is ""
    for attribute in attributes:
        key, has_value, value = attribute.partition("=")
        cookie[key.lower()] = value if has_value else True
    return cookie


async def remove_redis_keys(redis_url: str, namespace: str) -> None:
    """Remove every key under `namespace` (a test's own prefix on the shared Redis)."""
    client = create_redis(redis_url, timeout_s=10)
    try:
        async for key in client.scan_iter(match=f"{namespace}:*"):
            await client.delete(key)
    finally:
        await client.aclose()
