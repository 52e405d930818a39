"""Auth rules without servers: password policy and hashing, keys, token contents."""

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import ValidationError

from actors.auth.domain import (
    OrderLogin,
    Registration,
    RolesUpdate,
    access_claims,
    hash_password,
    new_refresh_token,
    refresh_token_hash,
    verify_password,
)
from actors.auth.keys import SigningKeys, generate_key_file, public_jwk
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@pytest.mark.parametrize("password", ["short", "123456789", " " * 12, "x" * 1025])
def test_weak_or_absurd_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        Registration(email="a@example.com", password=password, name="A")


def test_passwords_longer_than_bcrypt_reads_are_all_significant():
    long = "correct horse battery staple " * 4  # 116 bytes, past bcrypt's 72
    hashed = hash_password(long, rounds=4)
    assert verify_password(long, hashed)
    assert not verify_password(long[:-1] + "X", hashed)
    assert not verify_password(long[:72], hashed)


def test_unicode_passwords_round_trip():
    hashed = hash_password("zażółć gęślą jaźń", rounds=4)
    assert verify_password("zażółć gęślą jaźń", hashed) and not verify_password("zazolc gesla jazn", hashed)


def test_role_updates_accept_known_roles_only():
    assert RolesUpdate(roles=["warehouse", "admin", "admin"]).roles == ["admin", "warehouse"]
    with pytest.raises(ValidationError):
        RolesUpdate(roles=["root"])
    with pytest.raises(ValidationError):
        RolesUpdate(roles=[])


def test_order_login_needs_an_order_number():
    OrderLogin(order_number="ORD-2026-000042", email="a@example.com")
    for not_a_number in ("42", "ORD-٢٠٢٦-٠٠٠٠٤٢", "ORD-2026-" + "1" * 500):
        with pytest.raises(ValidationError):
            OrderLogin(order_number=not_a_number, email="a@example.com")


def test_refresh_tokens_are_random_and_stored_hashed():
    a, b = new_refresh_token(), new_refresh_token()
    assert a != b and len(a) >= 40
    assert refresh_token_hash(a) == refresh_token_hash(a) != refresh_token_hash(b)
    assert a not in refresh_token_hash(a)


def test_the_kid_is_the_key_thumbprint():
    key = Ed25519PrivateKey.generate()
    assert public_jwk(key.public_key())["kid"] == public_jwk(key.public_key())["kid"]
    assert public_jwk(key.public_key())["kid"] != public_jwk(Ed25519PrivateKey.generate().public_key())["kid"]


async def test_signed_claims_verify_with_the_published_key():
    keys = SigningKeys(Ed25519PrivateKey.generate(), [Ed25519PrivateKey.generate().public_key()])
    assert len(keys.jwks["keys"]) == 2  # current and previous, during a rotation
    now = datetime.now(UTC)
    claims = access_claims(session_id=uuid.uuid4(), subject="u1", roles=["admin"], email="a@example.com",
                           issuer="iss", audience="aud", now=now, ttl=timedelta(minutes=15))
    token = keys.sign(claims)
    assert jwt.get_unverified_header(token)["kid"] == keys.kid
    published = await keys.get(keys.kid)
    decoded = jwt.decode(token, published.key, algorithms=["EdDSA"], audience="aud", issuer="iss")
    assert decoded["exp"] - decoded["iat"] == 900 and decoded["roles"] == ["admin"]


def test_key_files_are_private(tmp_path):
    path = tmp_path / "keys" / "k.pem"
    generate_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        generate_key_file(path)  # never overwrites a key in use
