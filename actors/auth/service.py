"""Use cases of the auth service: accounts, logins, sessions, roles."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from actors.auth import store
from actors.auth.domain import (
    PASSWORD_RESET,
    VERIFY_EMAIL,
    OrderClaim,
    OrderLogin,
    PasswordReset,
    Registration,
    StaffLogin,
    TokenPair,
    User,
    access_claims,
    hash_password,
    link_token_hash,
    new_link_token,
    new_refresh_token,
    open_successor,
    refresh_token_hash,
    seal_successor,
    verify_password,
)
from actors.auth.keys import SigningKeys
from actors.auth.lockout import Lockout
from actors.auth.mail import Mail, already_registered_mail, password_reset_mail, verification_mail
from actors.auth.settings import AuthSettings
from actors.common.db import CONNECTION_ERRORS, connection
from actors.common.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceUnavailable, Unauthorized
from actors.common.logging import get_logger
from actors.common.loop import BackgroundLoop
from actors.common.metrics import REFRESH_REUSE, SESSIONS_REVOKED
from actors.common.redis import REDIS_ERRORS, count_in_window
from actors.common.security import Principal, revoked_key

log = get_logger("auth")

# Finds the order with this number placed with this email; returns its id, or None.
OrderLookup = Callable[[str, str], Awaitable[uuid.UUID | None]]
# The same, and records the order as the account's (number, email, account id).
OrderClaimer = Callable[[str, str, uuid.UUID], Awaitable[uuid.UUID | None]]

BAD_CREDENTIALS = "The credentials are not valid."


class InvalidLink(BadRequest):
    slug, title = "invalid-link", "The link is not valid"


BAD_LINK = "This link is not valid: it was used already, has expired, or was never sent. Ask for a new one."


class AuthService:
    def __init__(self, pool: asyncpg.Pool, redis, keys: SigningKeys, settings: AuthSettings,
                 find_order: OrderLookup, claim_order: OrderClaimer):
        self.pool = pool
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.find_order = find_order
        self.claim_order_for = claim_order
        self.lockout = Lockout(redis, settings)
        # Set whenever a mail is queued, so the outbox sender sends it at once.
        self.mail_queued = asyncio.Event()
        # Checked against when the email is unknown, so both failures cost one bcrypt.
        self._dummy_hash = hash_password("no-such-account-password", settings.bcrypt_rounds)
        self._hashing = asyncio.Semaphore(settings.max_concurrent_hashes)
        self._background: set[asyncio.Task] = set()  # answered already, still running
        self._reset_places = asyncio.Semaphore(settings.db_pool_size)

    def _connection(self):
        return connection(self.pool, self.settings.dependency_timeout_s)

    async def _hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(hash_password, password, self.settings.bcrypt_rounds)

    async def _verify(self, password: str, password_hash: str) -> bool:
        async with self._hashing:
            return await asyncio.to_thread(verify_password, password, password_hash)

    # --- accounts ---------------------------------------------------------------------

    async def register(self, reg: Registration) -> None:
        """A customer account whose address is not yet proved, and a verification mail. For an
        address that has an account already: no change, and a mail telling its owner. The
        caller cannot tell the two apart (the same answer, one bcrypt hash in both)."""
        password_hash = await self._hash(reg.password)
        email = str(reg.email)
        async with self._connection() as conn, conn.transaction():
            user_id = uuid.uuid4()
            if await store.insert_user(conn, user_id, email, reg.name, password_hash, ["customer"]):
                token = await self._new_link(conn, user_id, VERIFY_EMAIL, self.settings.email_verification_ttl_s)
                mail = verification_mail(email, self.settings.public_url, token,
                                         self.settings.email_verification_ttl_s)
            else:
                mail = already_registered_mail(email, self.settings.public_url)
            await self._queue_mail(conn, mail)
        self.mail_queued.set()

    async def verify_email(self, token: str) -> dict:
        async with self._connection() as conn, conn.transaction():
            user_id = await store.use_email_token(conn, link_token_hash(token), VERIFY_EMAIL)
            if user_id is None:
                raise InvalidLink(BAD_LINK)
            await store.mark_email_verified(conn, user_id)
            row = await store.user_by_id(conn, user_id)
        return {"email": row["email"], "email_verified": True}

    async def request_password_reset(self, email: str) -> None:
        """Mails a reset link if the address has an account; says nothing either way. The
        answer does not wait for it, so its time cannot tell either (OWASP: storing a link and
        queueing a mail took longer than finding no account). At most `db_pool_size` run at
        once; a flood waits here for a place, whatever the addresses."""
        await self._reset_places.acquire()
        task = asyncio.create_task(self._mail_reset_link(email), name="password-reset")
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        self._reset_places.release()
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("password reset request not done: %s", error.__class__.__name__, exc_info=error)

    async def finish_background(self) -> None:
        """Wait for the work answered already (reset requests), before the pool closes."""
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _mail_reset_link(self, email: str) -> None:
        async with self._connection() as conn, conn.transaction():
            row = await store.user_by_email(conn, email)
            if row is None:
                return
            token = await self._new_link(conn, row["id"], PASSWORD_RESET, self.settings.password_reset_ttl_s)
            await self._queue_mail(conn, password_reset_mail(row["email"], self.settings.public_url, token,
                                                             self.settings.password_reset_ttl_s))
        self.mail_queued.set()

    async def reset_password(self, reset: PasswordReset) -> None:
        """A new password; every session of the account ends. The link reached the address,
        so the address counts as proved as well."""
        password_hash = await self._hash(reset.password)
        async with self._connection() as conn, conn.transaction():
            user_id = await store.use_email_token(conn, link_token_hash(reset.token), PASSWORD_RESET)
            if user_id is None:
                raise InvalidLink(BAD_LINK)
            await store.set_password(conn, user_id, password_hash)
            # A link sent before (to someone who read the mailbox then) must not reset it again.
            await store.end_email_tokens(conn, user_id, PASSWORD_RESET)
            await store.mark_email_verified(conn, user_id)
            ended = await store.revoke_user_sessions(conn, user_id, "password reset")
            row = await store.user_by_id(conn, user_id)
        SESSIONS_REVOKED.labels("password_reset").inc(len(ended))
        await self._publish_revocations(ended)
        await self.lockout.succeeded(f"account:{row['email'].casefold()}")

    async def claim_order(self, user: Principal, claim: OrderClaim, client: str) -> dict:
        """The order becomes the signed-in account's, on the proof the order-number login
        asks for (and counted against the same lockout)."""
        if user.order_id is not None:
            raise Forbidden("Sign in to your account to claim an order; an order-number login cannot.")
        if "customer" not in user.roles:
            raise Forbidden("Only customer accounts claim orders.")
        account = f"order:{claim.order_number}"
        async with self.lockout.checking(account):
            order_id = await self.claim_order_for(claim.order_number, str(claim.email), uuid.UUID(user.subject))
        if order_id is None:
            await self.lockout.failed(account, client)
            raise Unauthorized(BAD_CREDENTIALS)
        await self.lockout.succeeded(account)
        return {"order_id": str(order_id), "order_number": claim.order_number}

    async def _create_account(self, reg: Registration, roles: list[str], *, verified: bool) -> User:
        password_hash = await self._hash(reg.password)
        user_id = uuid.uuid4()
        async with self._connection() as conn, conn.transaction():
            if not await store.insert_user(conn, user_id, str(reg.email), reg.name, password_hash, roles,
                                           verified=verified):
                raise Conflict("An account with this email exists already.")
        return User(id=user_id, email=str(reg.email), name=reg.name, roles=sorted(roles), email_verified=verified)

    async def _new_link(self, conn, user_id: uuid.UUID, purpose: str, ttl_s: int) -> str:
        token = new_link_token()
        await store.insert_email_token(conn, link_token_hash(token), user_id, purpose,
                                       datetime.now(UTC) + timedelta(seconds=ttl_s))
        return token

    async def _queue_mail(self, conn, mail: Mail) -> None:
        """Queue `mail`, unless its address already got `mail_per_address` mails within
        `mail_window_s`: register and password-reset must not let anyone flood a mailbox.
        Either way the caller's answer is the same."""
        key = f"{self.settings.redis_namespace}:auth:mail:{mail.recipient.casefold()}"
        try:
            sent = await count_in_window(self.redis, key, self.settings.mail_window_s)
        except REDIS_ERRORS as exc:
            log.warning("mail not counted per address (%s); sending it", exc)
            sent = 0
        if sent > self.settings.mail_per_address:
            log.warning("mail to one address over its hourly bound; not sent", extra={"subject": mail.subject})
            return
        await store.enqueue_mail(conn, mail.recipient, mail.subject, mail.body)

    async def bootstrap_admin(self) -> bool:
        """Create the first admin from settings when there is no admin yet."""
        email, password = self.settings.bootstrap_admin_email, self.settings.bootstrap_admin_password
        if not (email and password):
            return False
        async with self._connection() as conn:
            if await store.admin_exists(conn):
                return False
        try:
            # Its address is the operator's word, not a stranger's claim.
            await self._create_account(
                Registration(email=email, password=password, name=self.settings.bootstrap_admin_name),
                ["admin"], verified=True,
            )
        except Conflict:
            return False  # another replica was first, or the account exists without the role
        log.info("bootstrap admin created", extra={"email": email})
        return True

    async def users(self) -> list[User]:
        async with self._connection() as conn:
            return [_user(r) for r in await store.list_users(conn)]

    async def roles(self, user_id: uuid.UUID) -> list[str]:
        async with self._connection() as conn:
            row = await store.user_by_id(conn, user_id)
        if row is None:
            raise NotFound(f"No user with id {user_id}.")
        return list(row["roles"])

    async def set_roles(self, user_id: uuid.UUID, roles: list[str]) -> list[str]:
        """Replace a user's roles; their sessions end, so no token carries the old roles."""
        async with self._connection() as conn, conn.transaction():
            if await store.user_by_id(conn, user_id) is None:
                raise NotFound(f"No user with id {user_id}.")
            await store.set_roles(conn, user_id, roles)
            ended = await store.revoke_user_sessions(conn, user_id, "roles changed")
        SESSIONS_REVOKED.labels("roles_changed").inc(len(ended))
        await self._publish_revocations(ended)
        return roles

    async def me(self, user: Principal) -> dict:
        if user.order_id is not None:
            return {"roles": sorted(user.roles), "order_id": user.order_id, "order_number": user.order_number,
                    "email": user.email}
        async with self._connection() as conn:
            row = await store.user_by_id(conn, uuid.UUID(user.subject))
        if row is None:
            raise Unauthorized("This account no longer exists.")
        return _user(row).model_dump(mode="json")

    # --- logins -----------------------------------------------------------------------

    async def sign_in(self, credentials: StaffLogin | OrderLogin, client: str) -> TokenPair:
        """A login with email and password, or (a customer) with an order's number and email."""
        if isinstance(credentials, OrderLogin):
            return await self.login_with_order(credentials, client)
        return await self.login(credentials, client)

    async def login(self, credentials: StaffLogin, client: str) -> TokenPair:
        email = str(credentials.email)
        account = f"account:{email.casefold()}"
        async with self.lockout.checking(account):
            async with self._connection() as conn:
                row = await store.user_by_email(conn, email)
            valid = await self._verify(credentials.password, row["password_hash"] if row else self._dummy_hash)
        if not (row and valid):
            await self.lockout.failed(account, client)
            raise Unauthorized(BAD_CREDENTIALS)
        await self.lockout.succeeded(account)
        return await self._start_session(user_id=row["id"], subject=str(row["id"]), email=row["email"],
                                         roles=list(row["roles"]), email_verified=row["email_verified"])

    async def login_with_order(self, credentials: OrderLogin, client: str) -> TokenPair:
        account = f"order:{credentials.order_number}"
        async with self.lockout.checking(account):
            order_id = await self.find_order(credentials.order_number, str(credentials.email))
        if order_id is None:
            await self.lockout.failed(account, client)
            raise Unauthorized(BAD_CREDENTIALS)
        await self.lockout.succeeded(account)
        return await self._start_session(
            user_id=None, subject=f"order:{order_id}", email=str(credentials.email), roles=["customer"],
            order_id=order_id, order_number=credentials.order_number,
        )

    async def refresh(self, token: str) -> TokenPair:
        token_hash = refresh_token_hash(token)
        async with self._connection() as conn, conn.transaction():
            row = await store.claim_refresh_token(conn, token_hash)
            if row is None:
                raise Unauthorized("The refresh token is not valid.")
            if row["revoked_at"] is not None or row["expires_at"] <= datetime.now(UTC):
                raise Unauthorized("The session has ended; log in again.")
            if row["used_at"] is None:
                refresh_token = new_refresh_token()
                pair = self._pair(row, refresh_token)
                await store.insert_refresh_token(conn, refresh_token_hash(refresh_token), row["id"])
                await store.mark_refresh_token_used(conn, token_hash, refresh_token_hash(refresh_token),
                                                    seal_successor(token, pair))
                return pair
            if await store.retry_in_grace(conn, token_hash, self.settings.refresh_grace_s):
                return open_successor(token, row["successor_sealed"])
            # Someone holds an old token: whoever it is, this session cannot be trusted.
            await store.revoke_session(conn, row["id"], "refresh token reused")
        log.warning("refresh token reused; session revoked", extra={"session_id": str(row["id"])})
        REFRESH_REUSE.inc()
        SESSIONS_REVOKED.labels("refresh_reuse").inc()
        await self._publish_revocations([row["id"]])
        raise Unauthorized("The refresh token was used before; the session has been ended.")

    async def forget_expired_grace(self) -> int:
        """Clear the sealed pairs of refreshes whose grace is over (housekeeping)."""
        async with self._connection() as conn:
            return await store.forget_sealed_successors(conn, self.settings.refresh_grace_s)

    async def logout(self, user: Principal) -> None:
        await self._end_session(uuid.UUID(user.session_id))

    async def logout_refresh_token(self, token: str) -> None:
        """Logout by the session's refresh token (the browser's cookie), any of its tokens; a
        token of no session ends nothing."""
        async with self._connection() as conn:
            session_id = await store.session_of_refresh_token(conn, refresh_token_hash(token))
        if session_id is not None:
            await self._end_session(session_id)

    async def _end_session(self, session_id: uuid.UUID) -> None:
        async with self._connection() as conn:
            await store.revoke_session(conn, session_id, "logout")
        SESSIONS_REVOKED.labels("logout").inc()
        await self._publish_revocations([session_id])

    async def is_revoked(self, session_id: str, token: str = "") -> bool:
        """From the database, the source of truth (used while Redis is down)."""
        async with self._connection() as conn:
            row = await store.session(conn, uuid.UUID(session_id))
        return row is None or row["revoked_at"] is not None

    async def mail_waiting(self) -> int:
        """Mails queued and not yet accepted by the SMTP server."""
        async with self._connection() as conn:
            return await store.mail_waiting(conn)

    async def republish_revocations(self) -> int:
        """Copy recent revocations from PostgreSQL to Redis (after a Redis outage, a logout
        may be recorded only in the database)."""
        since = datetime.now(UTC) - timedelta(seconds=self.settings.access_token_ttl_s + 60)
        async with self._connection() as conn:
            revoked = await store.recently_revoked(conn, since)
        await self._publish_revocations(revoked, raise_errors=True)
        return len(revoked)

    async def housekeeping(self) -> None:
        """One round of the replica's housekeeping: revocations copied to Redis, refresh pairs
        past their grace forgotten (the latter even when the former failed)."""
        try:
            await self.republish_revocations()
        except REDIS_ERRORS:
            pass  # Redis is down; PostgreSQL answers session checks meanwhile
        finally:
            await self.forget_expired_grace()

    def housekeeping_loop(self) -> BackgroundLoop:
        """Housekeeping every second, in the background of each replica."""
        return BackgroundLoop("auth-housekeeping", self.housekeeping, idle_s=1.0,
                              transient=(ServiceUnavailable, *CONNECTION_ERRORS))

    # --- helpers ----------------------------------------------------------------------

    async def _start_session(self, *, user_id, subject: str, email: str, roles: list[str],
                             order_id: uuid.UUID | None = None, order_number: str | None = None,
                             email_verified: bool = False) -> TokenPair:
        session_id = uuid.uuid4()
        refresh_token = new_refresh_token()
        expires_at = datetime.now(UTC) + timedelta(seconds=self.settings.refresh_token_ttl_s)
        async with self._connection() as conn, conn.transaction():
            await store.insert_session(conn, session_id, user_id=user_id, email=email, roles=roles,
                                       expires_at=expires_at, order_id=order_id, order_number=order_number)
            await store.insert_refresh_token(conn, refresh_token_hash(refresh_token), session_id)
        return self._pair({"id": session_id, "user_id": user_id, "email": email, "roles": roles,
                           "order_id": order_id, "order_number": order_number, "email_verified": email_verified},
                          refresh_token)

    def _pair(self, session, refresh_token: str) -> TokenPair:
        subject = str(session["user_id"]) if session["user_id"] else f"order:{session['order_id']}"
        claims = access_claims(
            session_id=session["id"], subject=subject, roles=list(session["roles"]), email=session["email"],
            issuer=self.settings.auth_issuer, audience=self.settings.auth_audience, now=datetime.now(UTC),
            ttl=timedelta(seconds=self.settings.access_token_ttl_s),
            order_id=session["order_id"], order_number=session["order_number"],
            email_verified=bool(session["email_verified"]),
        )
        return TokenPair(access_token=self.keys.sign(claims), refresh_token=refresh_token,
                         expires_in=self.settings.access_token_ttl_s)

    async def _publish_revocations(self, session_ids, *, raise_errors: bool = False) -> None:
        ttl = self.settings.access_token_ttl_s + 60  # past the last access token's expiry
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for session_id in session_ids:
                    pipe.set(revoked_key(self.settings.redis_namespace, str(session_id)), "1", ex=ttl)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            if raise_errors:
                raise
            # PostgreSQL has it; republish_revocations copies it over when Redis is back.
            log.warning("revocation not written to Redis (%s); it is in PostgreSQL", exc)


def _user(row) -> User:
    return User(id=row["id"], email=row["email"], name=row["name"], roles=list(row["roles"]),
                email_verified=row["email_verified"])
