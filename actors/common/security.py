"""Who is making a request: access-token verification every service shares, and the
checks routes use (roles, ownership).

Tokens are verified locally with the auth service's public keys (JWKS, cached; an unknown
`kid` triggers one refetch). A logout is honoured through Redis (`auth:revoked:<sid>`);
while Redis is down the session is checked with the auth service instead, from its
database.
"""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

import httpx
import jwt

from actors.common.errors import Forbidden, ServiceUnavailable, Unauthorized
from actors.common.logging import get_logger
from actors.common.redis import REDIS_ERRORS

log = get_logger("security")

ALGORITHMS = ("EdDSA",)
ROLES = ("admin", "warehouse", "customer")
STAFF = frozenset({"admin", "warehouse"})
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "sid", "roles"]


def revoked_key(namespace: str, session_id: str) -> str:
    return f"{namespace}:auth:revoked:{session_id}"


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None
    email: str | None = None
    # Set for a customer who logged in with an order number: the one order they may see.
    order_id: str | None = None
    order_number: str | None = None
    # The account proved it owns `email` (a link mailed there was opened).
    email_verified: bool = False

    @property
    def is_guest(self) -> bool:
        return self.session_id is None

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF)

    @property
    def account_id(self) -> str | None:
        """The user id of a signed-in account (None for a guest and an order-number login)."""
        return None if self.is_guest or self.order_id is not None else self.subject

    @property
    def verified_email(self) -> str | None:
        """The address whose orders are this customer account's own: only a proved one."""
        return self.email if self.account_id and self.email_verified else None

    def owns(self, order_id: str, order_email: str) -> bool:
        """Whether the token alone shows the order is this customer's: the one order of an
        order-number login, or an order placed under the account's verified address. (An
        account's claimed orders are known to the orders service, not to the token.)"""
        if "customer" not in self.roles:
            return False
        if self.order_id is not None:
            return str(order_id) == self.order_id
        return self.verified_email is not None and self.verified_email.casefold() == order_email.casefold()


GUEST = Principal(subject="guest")


class InvalidToken(Unauthorized):
    slug, title = "invalid-token", "The access token is not valid"


def require_signed_in(user: Principal) -> Principal:
    if user.is_guest:
        raise Unauthorized("Sign in first: send Authorization: Bearer <access token>.")
    return user


def require_roles(user: Principal, *roles: str) -> Principal:
    require_signed_in(user)
    if not user.roles & set(roles):
        raise Forbidden(f"This needs one of the roles: {', '.join(sorted(roles))}.")
    return user


class KeySource(Protocol):
    async def get(self, kid: str) -> jwt.PyJWK | None: ...


class JwksKeySource:
    """Public keys from the auth service's JWKS, refetched when an unknown kid shows up
    (at most once per `min_refetch_s`, so forged kids cannot hammer the auth service; after
    a failed fetch, once per `retry_failed_s`, so a replica that started while auth was away
    has the keys soon after auth is back)."""

    def __init__(self, url: str, *, min_refetch_s: float = 5.0, retry_failed_s: float = 1.0,
                 timeout_s: float = 2.0):
        self.url = url
        self.min_refetch_s = min_refetch_s
        self.retry_failed_s = retry_failed_s
        self.timeout_s = timeout_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._fetch_failed = False
        self._fetching: asyncio.Task | None = None

    async def get(self, kid: str) -> jwt.PyJWK | None:
        """The key `kid` names; None when the auth service's current keys do not have it.
        ServiceUnavailable when its keys could not be fetched, also while the next attempt
        waits out retry_failed_s: the token may be valid, so it is not refused."""
        if kid not in self._keys:
            wait_s = self.retry_failed_s if self._fetch_failed else self.min_refetch_s
            if self._fetching is None and time.monotonic() - self._fetched_at >= wait_s:
                self._fetching = asyncio.create_task(self._fetch())
            if self._fetching is not None:
                # Every request waits on the one fetch, shielded: the request that started it
                # going away (cancelled) does not cut it short for the others (a new replica's
                # first requests all wait on it).
                await asyncio.shield(self._fetching)
        if kid not in self._keys and self._fetch_failed:
            raise ServiceUnavailable("The auth service's keys cannot be fetched.", dependency="auth")
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(self.url)
                response.raise_for_status()
            self._keys = {k["kid"]: jwt.PyJWK(k) for k in response.json()["keys"]}
            self._fetch_failed = False
        except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
            log.warning("cannot fetch signing keys from %s: %r", self.url, exc)  # a timeout has no message
            self._fetch_failed = True
        finally:
            self._fetched_at = time.monotonic()
            self._fetching = None


class SessionCheck(Protocol):
    async def is_revoked(self, session_id: str, token: str) -> bool: ...


class AuthServiceSessionCheck:
    """Asks the auth service (which reads its database) whether a session is still
    active; answers are kept for one second."""

    def __init__(self, auth_url: str, *, timeout_s: float = 2.0, cache_s: float = 1.0):
        self.auth_url = auth_url.rstrip("/")
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self._cache: dict[str, tuple[bool, float]] = {}

    async def is_revoked(self, session_id: str, token: str) -> bool:
        cached = self._cache.get(session_id)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(f"{self.auth_url}/me", headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise ServiceUnavailable("Neither Redis nor the auth service can confirm the session.",
                                     dependency="auth") from exc
        if response.status_code not in (200, 401):
            raise ServiceUnavailable("The auth service cannot confirm the session.", dependency="auth")
        revoked = response.status_code == 401
        self._cache[session_id] = (revoked, time.monotonic() + self.cache_s)
        return revoked


class RedisSessionCheck:
    """Revocations from Redis; `fallback` answers while Redis does not."""

    def __init__(self, redis, fallback: SessionCheck, *, namespace: str):
        self.redis = redis
        self.fallback = fallback
        self.namespace = namespace
        self.redis_ok = True

    async def is_revoked(self, session_id: str, token: str) -> bool:
        try:
            revoked = bool(await self.redis.exists(revoked_key(self.namespace, session_id)))
            self.redis_ok = True
            return revoked
        except REDIS_ERRORS as exc:
            if self.redis_ok:
                log.warning("Redis unavailable for session checks (%s); using the fallback", exc)
            self.redis_ok = False
            return await self.fallback.is_revoked(session_id, token)


class TokenVerifier:
    def __init__(self, keys: KeySource, sessions: SessionCheck, *, issuer: str, audience: str):
        self.keys = keys
        self.sessions = sessions
        self.issuer = issuer
        self.audience = audience

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("The access token is malformed.") from None
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("The access token is signed with an algorithm that is not accepted.")
        key = await self.keys.get(str(header.get("kid")))
        if key is None:
            raise InvalidToken("The access token is signed with an unknown key.")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The access token has expired; refresh it.") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"The access token is not valid ({exc.__class__.__name__}).") from None
        if await self.sessions.is_revoked(claims["sid"], token):
            raise InvalidToken("The session of this access token has ended.")
        return Principal(
            subject=claims["sub"],
            roles=frozenset(claims["roles"]) & set(ROLES),
            session_id=claims["sid"],
            email=claims.get("email"),
            order_id=claims.get("order_id"),
            order_number=claims.get("order_number"),
            email_verified=claims.get("email_verified") is True,
        )
