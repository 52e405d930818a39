"""Each service's connections to PostgreSQL (actors.common.db.connection) on the real server: a
request that finds every connection of its pool in use waits in line for one (a load peak:
the cluster bench once answered such requests 503 "database unavailable" after 1.5 s while
PostgreSQL was fine), and past pool_wait_s gets a 503 that says the connections are busy; a
database that cannot be reached is a 503 that says so, without that wait."""

import asyncio

import asyncpg
import pytest

from actors.common.db import connection, create_pool
from actors.common.errors import ServiceUnavailable
from tests.integration.support import closed_port_url

TIMEOUT_S = 0.2  # the services' dependency timeout, shortened


async def hold(pool, seconds: float, taken: asyncio.Event) -> None:
    async with connection(pool, TIMEOUT_S) as conn:
        taken.set()
        await conn.execute("SELECT pg_sleep($1)", seconds)


@pytest.fixture
async def one_connection_pool(database_url):
    pool = await create_pool(database_url, max_size=1)
    yield pool
    await pool.close()


async def test_a_request_waits_for_a_busy_pool_instead_of_failing(one_connection_pool):
    taken = asyncio.Event()
    holder = asyncio.create_task(hold(one_connection_pool, 4 * TIMEOUT_S, taken))
    await taken.wait()
    async with connection(one_connection_pool, TIMEOUT_S, pool_wait_s=30) as conn:
        assert await conn.fetchval("SELECT 1") == 1
    assert holder.done() and holder.exception() is None


async def test_a_pool_busy_past_its_wait_is_a_503_that_says_so(one_connection_pool):
    taken = asyncio.Event()
    holder = asyncio.create_task(hold(one_connection_pool, 2.0, taken))
    await taken.wait()
    with pytest.raises(ServiceUnavailable, match="in use") as refused:
        async with connection(one_connection_pool, TIMEOUT_S, pool_wait_s=0.3):
            pass
    assert refused.value.extra == {"dependency": "postgresql"}
    await holder


async def test_an_unreachable_database_is_a_503_that_says_so():
    pool = await create_pool(closed_port_url("postgresql") + "postgres", max_size=1)
    try:
        with pytest.raises(ServiceUnavailable, match="unavailable"):
            async with connection(pool, TIMEOUT_S, pool_wait_s=30):
                pass
    finally:
        await pool.close()


async def test_a_connection_that_cannot_be_reset_in_time_does_not_fail_the_finished_work(database_url):
    """The cluster bench once answered a status change 500 that PostgreSQL had committed: the
    connection's reset after the work outlived its budget on a starved CPU. The work stands,
    the connection is closed, and the pool opens a new one."""
    async def slow_reset(conn):
        await asyncio.sleep(1.0)

    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1, reset=slow_reset)
    try:
        async with connection(pool, TIMEOUT_S, pool_wait_s=0.3) as conn:
            first = conn.get_server_pid()
            assert await conn.fetchval("SELECT 1") == 1
        async with connection(pool, TIMEOUT_S, pool_wait_s=30) as conn:
            # closed rather than given back half reset: a new server process
            assert conn.get_server_pid() != first and await conn.fetchval("SELECT 1") == 1
    finally:
        await pool.close()
