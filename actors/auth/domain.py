"""Auth rules without I/O: input shapes, password policy and hashing, token contents."""

import hashlib
import os
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Annotated

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from passlib.hash import bcrypt_sha256
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator

from actors.common.events import OrderNumber
from actors.common.security import ROLES
from actors.common.text import Name

MIN_PASSWORD = 10
# bcrypt reads only 72 bytes; bcrypt_sha256 pre-hashes with HMAC-SHA256, so every byte of
# a long passphrase counts. The upper bound only keeps hashing requests small.
MAX_PASSWORD = 1024


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be only spaces")
    return value


# The password policy, for registration and password reset alike.
NewPassword = Annotated[str, Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD), AfterValidator(_not_blank)]


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    password: NewPassword
    name: Name


class StaffLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class OrderLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_number: OrderNumber
    email: EmailStr


class OrderClaim(OrderLogin):
    """The same proof as the order-number login, by a signed-in account."""


class EmailLink(BaseModel):
    """The token of a link we e-mailed (verification)."""
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=20, max_length=200)


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr


class PasswordReset(EmailLink):
    password: NewPassword


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=20, max_length=200)


class RolesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roles: list[str] = Field(min_length=1, max_length=len(ROLES))

    @field_validator("roles")
    @classmethod
    def _known(cls, roles: list[str]) -> list[str]:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; known: {list(ROLES)}")
        return sorted(set(roles))


class User(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    roles: list[str]
    email_verified: bool


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


def hash_password(password: str, rounds: int) -> str:
    return bcrypt_sha256.using(rounds=rounds).hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return bcrypt_sha256.verify(password, password_hash)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> str:
    # The token is 256 random bits, so a plain SHA-256 is enough to make a stolen table useless.
    return hashlib.sha256(token.encode()).hexdigest()


def _successor_key(old_refresh_token: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"orderflow refresh successor").derive(old_refresh_token.encode())


def seal_successor(old_refresh_token: str, pair: TokenPair) -> bytes:
    """The pair a refresh answered, sealed with a key only the holder of the old token can
    derive (we keep only its hash): a retry of that refresh gets the same pair back."""
    nonce = os.urandom(12)
    return nonce + AESGCM(_successor_key(old_refresh_token)).encrypt(nonce, pair.model_dump_json().encode(), None)


def open_successor(old_refresh_token: str, sealed: bytes) -> TokenPair:
    plain = AESGCM(_successor_key(old_refresh_token)).decrypt(sealed[:12], sealed[12:], None)
    return TokenPair.model_validate_json(plain)


# E-mailed links carry the same kind of token, stored the same way.
new_link_token = new_refresh_token
link_token_hash = refresh_token_hash
VERIFY_EMAIL, PASSWORD_RESET = "verify-email", "password-reset"


def access_claims(
    *, session_id: uuid.UUID, subject: str, roles: list[str], email: str, issuer: str, audience: str,
    now: datetime, ttl: timedelta, order_id: uuid.UUID | None = None, order_number: str | None = None,
    email_verified: bool = False,
) -> dict:
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "sid": str(session_id),
        "roles": roles,
        "email": email,
        # Whether the account proved it owns `email`: only then are the orders placed under
        # it the account's own (an order-number login is scoped by order_id instead).
        "email_verified": email_verified,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if order_id is not None:
        claims |= {"order_id": str(order_id), "order_number": order_number}
    return claims
