"""PostgreSQL: connection pools, database creation and migrations (asyncpg, plain SQL)."""

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from actors.common.errors import ServiceUnavailable
from actors.common.logging import get_logger

log = get_logger("db")

# What asyncpg raises when the server is down, restarting, the socket broke, or the server
# cannot take work for now (out of connections, memory or disk; a standby that is read-only
# until a failover completes). All of them pass: callers answer 503 or retry.
CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InsufficientResourcesError,
    asyncpg.ReadOnlySQLTransactionError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, max_size: int = 10, timeout_s: float = 1.5) -> asyncpg.Pool:
    """A pool that opens connections lazily, so a service starts while PostgreSQL is down
    and recovers by itself when it is back."""
    return await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=max_size,
        timeout=timeout_s,  # connect timeout
        command_timeout=30,
        init=_init_connection,
    )


# How long a request waits for a connection while all of the pool's are in use: a load peak,
# not a dead database (whose connections fail within timeout_s). Requests wait in line, where
# Serve's autoscaler counts them, instead of failing; well within Serve's request timeout.
POOL_WAIT_S = 10.0


@contextlib.asynccontextmanager
async def connection(pool: asyncpg.Pool, timeout_s: float, *,
                     pool_wait_s: float = POOL_WAIT_S) -> AsyncIterator[asyncpg.Connection]:
    """Acquire a connection; a dead database becomes a 503 problem, not a stack trace, and so
    does a wait for a busy pool longer than pool_wait_s, saying so."""
    busy = pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size()
    try:
        conn = await pool.acquire(timeout=pool_wait_s if busy else timeout_s)
    except TimeoutError as exc:
        if not busy:
            raise _unavailable(exc) from exc
        log.warning("every database connection stayed in use for %.0f s", pool_wait_s)
        raise ServiceUnavailable("Every database connection is in use; try again shortly.",
                                 dependency="postgresql") from exc
    except CONNECTION_ERRORS as exc:
        raise _unavailable(exc) from exc
    try:
        yield conn
    except CONNECTION_ERRORS as exc:
        raise _unavailable(exc) from exc
    finally:
        await _release(pool, conn, pool_wait_s)


async def _release(pool: asyncpg.Pool, conn: asyncpg.Connection, timeout_s: float) -> None:
    """Give the connection back. The request's work is done (committed or not) by now, so a
    reset that fails or takes too long, as on a starved CPU, must not fail it: asyncpg then
    closes the connection and the pool opens another when needed."""
    try:
        await pool.release(conn, timeout=timeout_s)
    except (*CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
        log.warning("a database connection could not be reset and was closed: %s", exc.__class__.__name__)


def _unavailable(exc: BaseException) -> ServiceUnavailable:
    log.warning("database unavailable: %s", exc.__class__.__name__)
    return ServiceUnavailable("The database is unavailable; try again shortly.", dependency="postgresql")


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


async def ensure_database(dsn: str) -> bool:
    """Create the database named in `dsn` if it is missing. True when it was created."""
    name = database_name(dsn)
    conn = await asyncpg.connect(with_database(dsn, "postgres"), timeout=5)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{_identifier(name)}"')
        except asyncpg.DuplicateDatabaseError:
            return False  # created by a concurrent starter
        return True
    finally:
        await conn.close()


async def drop_database(dsn: str) -> None:
    name = database_name(dsn)
    conn = await asyncpg.connect(with_database(dsn, "postgres"), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{_identifier(name)}" WITH (FORCE)')
    finally:
        await conn.close()


def _identifier(name: str) -> str:
    if not name or not all(c.isalnum() or c == "_" for c in name):
        raise ValueError(f"unsafe database name: {name!r}")
    return name


async def migrate(dsn: str, migrations_dir: Path) -> list[str]:
    """Apply the numbered *.sql files not yet applied, each in its own transaction.

    An advisory lock makes concurrent starters (several replicas) wait for each other, so
    every migration runs exactly once. Returns the versions applied by this call.
    """
    lock_key = int.from_bytes(hashlib.sha256(b"orderflow-migrations").digest()[:8], "big", signed=True)
    conn = await asyncpg.connect(dsn, timeout=5)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for path in sorted(migrations_dir.glob("*.sql")):
                if path.stem in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)
                applied.append(path.stem)
                log.info("applied migration %s", path.stem)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()
    return applied


class NotifyListener:
    """A connection of its own that LISTENs on one channel and sets `wake` on every NOTIFY.
    `ensure()` (re)opens it; while it cannot, the caller's poll covers for it."""

    def __init__(self, dsn: str, channel: str, wake: asyncio.Event):
        self.dsn = dsn
        self.channel = channel
        self.wake = wake
        self._connection: asyncpg.Connection | None = None
        self._failing = False

    async def ensure(self) -> bool:
        """Whether it is listening; a failure to (re)open is said once, not raised: the
        database may still serve the caller's pool (say, out of connections for one more)."""
        if self._connection is not None and not self._connection.is_closed():
            return True
        connection = None
        try:
            connection = await asyncpg.connect(self.dsn, timeout=5)
            await connection.add_listener(self.channel, lambda *_: self.wake.set())
        except CONNECTION_ERRORS as exc:
            if connection is not None:
                connection.terminate()
            if not self._failing:
                log.warning("cannot LISTEN on %s (%s); polling until it can", self.channel, exc.__class__.__name__)
            self._failing = True
            return False
        self._connection = connection
        if self._failing:
            log.info("listening on %s again", self.channel)
        self._failing = False
        return True

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)
