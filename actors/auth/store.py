"""SQL for accounts, sessions and refresh tokens. Every function takes a connection."""

import uuid
from datetime import datetime

import asyncpg

_USER = """SELECT u.id, u.email, u.name, u.password_hash, u.email_verified_at IS NOT NULL AS email_verified,
                  coalesce(array_agg(r.role ORDER BY r.role) FILTER (WHERE r.role IS NOT NULL), '{}') AS roles
           FROM users u LEFT JOIN user_roles r ON r.user_id = u.id"""


async def insert_user(
    conn: asyncpg.Connection, user_id: uuid.UUID, email: str, name: str, password_hash: str, roles: list[str],
    *, verified: bool = False,
) -> bool:
    """False when the email is taken."""
    inserted = await conn.fetchval(
        """INSERT INTO users (id, email, name, password_hash, email_verified_at)
           VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END)
           ON CONFLICT ((lower(email))) DO NOTHING RETURNING true""",
        user_id, email, name, password_hash, verified,
    )
    if inserted:
        await set_roles(conn, user_id, roles)
    return bool(inserted)


async def user_by_email(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_USER} WHERE lower(u.email) = lower($1) GROUP BY u.id", email)


async def user_by_id(conn: asyncpg.Connection, user_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_USER} WHERE u.id = $1 GROUP BY u.id", user_id)


async def list_users(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(f"{_USER} GROUP BY u.id ORDER BY u.created_at, u.id")


async def set_roles(conn: asyncpg.Connection, user_id: uuid.UUID, roles: list[str]) -> None:
    await conn.execute("DELETE FROM user_roles WHERE user_id = $1", user_id)
    await conn.executemany("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)", [(user_id, r) for r in roles])


async def admin_exists(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM user_roles WHERE role = 'admin')")


async def insert_session(
    conn: asyncpg.Connection, session_id: uuid.UUID, *, user_id: uuid.UUID | None, email: str, roles: list[str],
    expires_at: datetime, order_id: uuid.UUID | None = None, order_number: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO sessions (id, user_id, email, roles, order_id, order_number, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        session_id, user_id, email, roles, order_id, order_number, expires_at,
    )


async def session(conn: asyncpg.Connection, session_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sessions WHERE id = $1", session_id)


async def revoke_session(conn: asyncpg.Connection, session_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
        session_id, reason,
    )


async def revoke_user_sessions(conn: asyncpg.Connection, user_id: uuid.UUID, reason: str) -> list[uuid.UUID]:
    rows = await conn.fetch(
        """UPDATE sessions SET revoked_at = now(), revoked_reason = $2
           WHERE user_id = $1 AND revoked_at IS NULL RETURNING id""",
        user_id, reason,
    )
    return [r["id"] for r in rows]


async def recently_revoked(conn: asyncpg.Connection, since: datetime) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch("SELECT id FROM sessions WHERE revoked_at >= $1", since)]


async def insert_refresh_token(conn: asyncpg.Connection, token_hash: str, session_id: uuid.UUID) -> None:
    await conn.execute("INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)", token_hash, session_id)


async def session_of_refresh_token(conn: asyncpg.Connection, token_hash: str) -> uuid.UUID | None:
    return await conn.fetchval("SELECT session_id FROM refresh_tokens WHERE token_hash = $1", token_hash)


async def claim_refresh_token(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """The token's row and its session, locked, before marking it used."""
    return await conn.fetchrow(
        """SELECT t.used_at, t.successor_hash, t.successor_sealed, s.*,
                  u.email_verified_at IS NOT NULL AS email_verified
           FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id LEFT JOIN users u ON u.id = s.user_id
           WHERE t.token_hash = $1 FOR UPDATE OF t, s""",
        token_hash,
    )


async def mark_refresh_token_used(
    conn: asyncpg.Connection, token_hash: str, successor_hash: str, successor_sealed: bytes
) -> None:
    await conn.execute(
        """UPDATE refresh_tokens SET used_at = now(), successor_hash = $2, successor_sealed = $3
           WHERE token_hash = $1""",
        token_hash, successor_hash, successor_sealed,
    )


async def retry_in_grace(conn: asyncpg.Connection, token_hash: str, grace_s: float) -> bool:
    """Whether this used token was rotated less than `grace_s` ago (by the database's clock,
    the one that wrote used_at) and its successor was never used since. (Using the successor
    locks its session row, which the caller holds: the answer cannot change before the
    caller's transaction ends.)"""
    return bool(await conn.fetchval(
        """SELECT t.used_at >= now() - make_interval(secs => $2) AND s.used_at IS NULL
           FROM refresh_tokens t JOIN refresh_tokens s ON s.token_hash = t.successor_hash
           WHERE t.token_hash = $1 AND t.successor_sealed IS NOT NULL""",
        token_hash, grace_s,
    ))


async def forget_sealed_successors(conn: asyncpg.Connection, grace_s: float) -> int:
    """Drop the sealed pairs whose grace is over: past it they only serve someone who holds
    both this table and an old refresh token."""
    result = await conn.execute(
        """UPDATE refresh_tokens SET successor_sealed = NULL
           WHERE successor_sealed IS NOT NULL AND used_at < now() - make_interval(secs => $1)""",
        grace_s,
    )
    return int(result.split()[-1])


async def mark_email_verified(conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1", user_id
    )


async def set_password(conn: asyncpg.Connection, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def insert_email_token(
    conn: asyncpg.Connection, token_hash: str, user_id: uuid.UUID, purpose: str, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)",
        token_hash, user_id, purpose, expires_at,
    )


async def use_email_token(conn: asyncpg.Connection, token_hash: str, purpose: str) -> uuid.UUID | None:
    """Mark the token used and return its user, if it is unused, unexpired and for `purpose`."""
    return await conn.fetchval(
        """UPDATE email_tokens SET used_at = now()
           WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
           RETURNING user_id""",
        token_hash, purpose,
    )


async def end_email_tokens(conn: asyncpg.Connection, user_id: uuid.UUID, purpose: str) -> None:
    """Every unused `purpose` link of the user stops working."""
    await conn.execute(
        "UPDATE email_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        user_id, purpose,
    )


async def enqueue_mail(conn: asyncpg.Connection, recipient: str, subject: str, body: str) -> None:
    await conn.execute(
        "INSERT INTO mail_outbox (recipient, subject, body) VALUES ($1, $2, $3)", recipient, subject, body
    )


async def next_mail(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """The oldest unsent mail due for an attempt, locked for this sender (other replicas skip it)."""
    return await conn.fetchrow(
        "SELECT * FROM mail_outbox WHERE next_attempt_at <= now() ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    )


async def mail_waiting(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM mail_outbox")


async def mail_sent(conn: asyncpg.Connection, mail_id: int) -> None:
    await conn.execute("DELETE FROM mail_outbox WHERE id = $1", mail_id)


async def mail_failed(conn: asyncpg.Connection, mail_id: int, error: str, retry_in_s: float) -> None:
    await conn.execute(
        """UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2,
                  next_attempt_at = now() + make_interval(secs => $3)
           WHERE id = $1""",
        mail_id, error[:500], retry_in_s,
    )
