"""The auth service and the token middleware against real PostgreSQL and Redis."""

import asyncio
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.auth.domain import OrderLogin, Registration, StaffLogin, access_claims, refresh_token_hash
from actors.auth.keys import SigningKeys
import actors.auth.service
from actors.auth.service import AuthService
from actors.common.errors import Unauthorized
from actors.common.redis import create_redis
from actors.common.security import InvalidToken, RedisSessionCheck, TokenVerifier, revoked_key
from tests.factories import PASSWORD, new_order, unique_email
from tests.integration.auth_support import auth_pool, keys, make_auth, orders, registered  # noqa: F401 (fixtures)
from tests.integration.conftest import SUFFIX
from tests.support import wait_until

ISSUER, AUDIENCE = "orderflow-auth", "orderflow"


@pytest.fixture
async def dead_redis():
    """A Redis URL nothing listens on: every call fails at once, like a stopped server."""
    client = create_redis("redis://127.0.0.1:1/0")
    yield client
    await client.aclose()


@pytest.fixture
def auth(make_auth, redis):
    return make_auth(redis)


def verifier_for(auth: AuthService, keys) -> TokenVerifier:
    return TokenVerifier(keys, RedisSessionCheck(auth.redis, fallback=auth, namespace=auth.settings.redis_namespace), issuer=ISSUER, audience=AUDIENCE)


async def test_register_login_me_refresh_logout(auth, keys):
    user, address = await registered(auth)
    assert user.roles == ["customer"] and not user.email_verified
    await auth.register(Registration(email=address.upper(), password="another long password", name="again"))
    pair = await auth.login(StaffLogin(email=address, password=PASSWORD), "10.0.0.1")
    verifier = verifier_for(auth, keys)
    me = await verifier.verify(pair.access_token)
    assert me.subject == str(user.id) and me.roles == {"customer"} and me.email == address
    assert (await auth.me(me))["email"] == address

    renewed = await auth.refresh(pair.refresh_token)
    assert renewed.refresh_token != pair.refresh_token
    await verifier.verify(renewed.access_token)

    await auth.logout(await verifier.verify(renewed.access_token))
    for token in (pair.access_token, renewed.access_token):
        with pytest.raises(InvalidToken, match="ended"):
            await verifier.verify(token)
    with pytest.raises(Unauthorized):
        await auth.refresh(renewed.refresh_token)


async def test_reusing_a_refresh_token_after_its_successor_was_used_ends_the_session(auth, keys):
    _, address = await registered(auth)
    pair = await auth.login(StaffLogin(email=address, password=PASSWORD), "10.0.0.2")
    renewed = await auth.refresh(pair.refresh_token)
    newest = await auth.refresh(renewed.refresh_token)  # the legitimate holder moved on
    with pytest.raises(Unauthorized, match="used before"):
        await auth.refresh(pair.refresh_token)  # the stolen copy
    with pytest.raises(InvalidToken):
        await verifier_for(auth, keys).verify(newest.access_token)
    with pytest.raises(Unauthorized):
        await auth.refresh(newest.refresh_token)  # the legitimate holder is out too


async def test_a_retried_refresh_within_the_grace_gets_the_same_pair(auth, keys):
    """Issue 10, item 12: the answer to a refresh was lost; the client sends it again."""
    _, address = await registered(auth)
    pair = await auth.login(StaffLogin(email=address, password=PASSWORD), "10.0.0.2")
    renewed, retried, again = [await auth.refresh(pair.refresh_token) for _ in range(3)]
    assert retried == renewed == again
    await verifier_for(auth, keys).verify(renewed.access_token)  # the session lives
    newest = await auth.refresh(renewed.refresh_token)
    await verifier_for(auth, keys).verify(newest.access_token)


async def test_a_retry_after_the_grace_ends_the_session(auth, auth_pool, keys):
    _, address = await registered(auth)
    pair = await auth.login(StaffLogin(email=address, password=PASSWORD), "10.0.0.2")
    renewed = await auth.refresh(pair.refresh_token)
    await auth_pool.execute(
        "UPDATE refresh_tokens SET used_at = used_at - make_interval(secs => $2) WHERE token_hash = $1",
        refresh_token_hash(pair.refresh_token), auth.settings.refresh_grace_s + 1,
    )
    with pytest.raises(Unauthorized, match="used before"):
        await auth.refresh(pair.refresh_token)
    with pytest.raises(InvalidToken):
        await verifier_for(auth, keys).verify(renewed.access_token)
    with pytest.raises(Unauthorized):
        await auth.refresh(renewed.refresh_token)


async def test_a_sealed_pair_is_forgotten_once_its_grace_is_over(auth, auth_pool):
    """Past the grace the sealed pair only helps someone holding the table and an old token."""
    _, address = await registered(auth)
    old, recent = [await auth.login(StaffLogin(email=address, password=PASSWORD), "10.0.0.2") for _ in range(2)]
    await auth.refresh(old.refresh_token)
    await auth.refresh(recent.refresh_token)
    await auth_pool.execute(
        "UPDATE refresh_tokens SET used_at = used_at - make_interval(secs => $2) WHERE token_hash = $1",
        refresh_token_hash(old.refresh_token), auth.settings.refresh_grace_s + 1,
    )
    assert await auth.forget_expired_grace() >= 1
    sealed = await auth_pool.fetchval(
        "SELECT successor_sealed FROM refresh_tokens WHERE token_hash = $1", refresh_token_hash(old.refresh_token))
    assert sealed is None
    assert await auth.refresh(recent.refresh_token) == await auth.refresh(recent.refresh_token)  # still in grace


async def test_housekeeping_forgets_pairs_past_their_grace_while_redis_is_down(make_auth, auth_pool, dead_redis):
    auth = make_auth(dead_redis)
    _, address = await registered(auth)
    pair = await auth.login(StaffLogin(email=address, password=PASSWORD), "10.0.0.2")
    await auth.refresh(pair.refresh_token)
    await auth_pool.execute(
        "UPDATE refresh_tokens SET used_at = used_at - make_interval(secs => $2) WHERE token_hash = $1",
        refresh_token_hash(pair.refresh_token), auth.settings.refresh_grace_s + 1,
    )
    housekeeping = auth.housekeeping_loop()
    housekeeping.start()
    try:
        await wait_until(lambda: auth_pool.fetchval(
            "SELECT successor_sealed IS NULL FROM refresh_tokens WHERE token_hash = $1",
            refresh_token_hash(pair.refresh_token)), timeout_s=10, what="the sealed pair forgotten")
    finally:
        await housekeeping.stop()
    assert housekeeping.failure is None  # Redis away is no failure of a round: PostgreSQL has the revocations


async def test_changing_roles_ends_the_users_sessions(auth, keys):
    user, address = await registered(auth)
    pair = await auth.login(StaffLogin(email=address, password=PASSWORD), "10.0.0.3")
    assert await auth.set_roles(user.id, ["warehouse"]) == ["warehouse"]
    with pytest.raises(InvalidToken):
        await verifier_for(auth, keys).verify(pair.access_token)
    again = await auth.login(StaffLogin(email=address, password=PASSWORD), "10.0.0.3")
    assert (await verifier_for(auth, keys).verify(again.access_token)).roles == {"warehouse"}


async def test_bootstrap_admin_once(make_auth, auth_pool, redis, keys):
    admin = unique_email("admin")
    auth = make_auth(redis, bootstrap_admin_email=admin, bootstrap_admin_password=PASSWORD)
    await auth_pool.execute("DELETE FROM user_roles WHERE role = 'admin'")
    assert await auth.bootstrap_admin() is True
    assert await auth.bootstrap_admin() is False
    pair = await auth.login(StaffLogin(email=admin, password=PASSWORD), "10.0.0.4")
    assert (await verifier_for(auth, keys).verify(pair.access_token)).roles == {"admin"}


async def test_customer_login_by_order_number(auth, orders, keys):
    order, _ = await orders.create(new_order(unique_email("buyer")), by="t")
    pair = await auth.login_with_order(
        OrderLogin(order_number=order.number, email=str(order.customer.email).upper()), "10.0.0.5"
    )
    me = await verifier_for(auth, keys).verify(pair.access_token)
    assert me.order_id == str(order.id) and me.roles == {"customer"}
    assert me.owns(str(order.id), str(order.customer.email))
    assert not me.owns(str(uuid.uuid4()), str(order.customer.email))
    with pytest.raises(Unauthorized):
        await auth.login_with_order(OrderLogin(order_number=order.number, email="other@example.com"), "10.0.0.5")


async def test_unknown_email_and_wrong_password_look_the_same(make_auth, redis):
    """Same answer, and the same work (one bcrypt at the configured cost) behind it: the
    two medians are compared with each other, never with a fixed time."""
    auth = make_auth(redis, bcrypt_rounds=8, lockout_attempts=10_000)
    _, address = await registered(auth)

    async def attempt(login: StaffLogin) -> tuple[str, float]:
        started = time.perf_counter()
        with pytest.raises(Unauthorized) as refused:
            await auth.login(login, f"10.3.{SUFFIX}")
        return refused.value.detail, time.perf_counter() - started

    unknown, wrong = [], []
    for n in range(15):
        unknown.append(await attempt(StaffLogin(email=unique_email(f"ghost{n}"), password="wrong password!")))
        wrong.append(await attempt(StaffLogin(email=address, password="wrong password!")))
    assert {d for d, _ in unknown} == {d for d, _ in wrong}
    a, b = statistics.median(t for _, t in unknown), statistics.median(t for _, t in wrong)
    assert abs(a - b) / max(a, b) < 0.35, (a, b)


async def test_login_and_validation_work_while_redis_is_down(make_auth, dead_redis, keys):
    auth = make_auth(dead_redis)
    _, address = await registered(auth)
    pair = await auth.login(StaffLogin(email=address, password=PASSWORD), "10.4.0.1")
    verifier = verifier_for(auth, keys)
    user = await verifier.verify(pair.access_token)
    assert user.email == address
    renewed = await auth.refresh(pair.refresh_token)
    await auth.logout(await verifier.verify(renewed.access_token))
    with pytest.raises(InvalidToken):  # the revocation is read from PostgreSQL
        await verifier.verify(renewed.access_token)
    assert verifier.sessions.redis_ok is False


async def test_a_logout_during_a_redis_outage_reaches_redis_afterwards(make_auth, redis, dead_redis, keys):
    during = make_auth(dead_redis)
    _, address = await registered(during)
    pair = await during.login(StaffLogin(email=address, password=PASSWORD), "10.5.0.1")
    await during.logout(await verifier_for(during, keys).verify(pair.access_token))
    after = make_auth(redis)
    housekeeping = after.housekeeping_loop()
    housekeeping.start()
    try:
        session_id = jwt.decode(pair.access_token, options={"verify_signature": False})["sid"]
        await wait_until(lambda: redis.exists(revoked_key(after.settings.redis_namespace, session_id)), timeout_s=10,
                         what="the revocation copied to Redis")
    finally:
        await housekeeping.stop()
    with pytest.raises(InvalidToken):
        await verifier_for(after, keys).verify(pair.access_token)


# --- attacks on the token check -----------------------------------------------------------

@pytest.fixture
async def genuine(auth, keys):
    _, address = await registered(auth)
    pair = await auth.login(StaffLogin(email=address, password=PASSWORD), "10.6.0.1")
    return jwt.decode(pair.access_token, options={"verify_signature": False}), pair.access_token


def _claims(claims: dict, **changes) -> dict:
    return claims | changes


async def test_genuine_token_passes(auth, keys, genuine):
    await verifier_for(auth, keys).verify(genuine[1])


async def test_token_signed_by_another_key_is_refused(auth, keys, genuine):
    forged = jwt.encode(genuine[0], Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": keys.kid})
    with pytest.raises(InvalidToken):
        await verifier_for(auth, keys).verify(forged)


async def test_alg_none_is_refused(auth, keys, genuine):
    unsigned = jwt.encode(_claims(genuine[0], roles=["admin"]), None, algorithm="none", headers={"kid": keys.kid})
    with pytest.raises(InvalidToken, match="algorithm"):
        await verifier_for(auth, keys).verify(unsigned)


async def test_hs256_signed_with_the_public_key_is_refused(auth, keys, genuine):
    public_pem = keys.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac
    import base64
    import json

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": keys.kid}).encode())
    payload = b64(json.dumps(_claims(genuine[0], roles=["admin"])).encode())
    signature = b64(hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest())
    with pytest.raises(InvalidToken, match="algorithm"):
        await verifier_for(auth, keys).verify((header + b"." + payload + b"." + signature).decode())


async def test_expired_token_is_refused(auth, keys, genuine):
    past = datetime.now(UTC) - timedelta(hours=1)
    claims = access_claims(session_id=uuid.UUID(genuine[0]["sid"]), subject=genuine[0]["sub"], roles=["customer"],
                           email="a@example.com", issuer=ISSUER, audience=AUDIENCE, now=past,
                           ttl=timedelta(minutes=15))
    with pytest.raises(InvalidToken, match="expired"):
        await verifier_for(auth, keys).verify(keys.sign(claims))


async def test_wrong_audience_and_issuer_are_refused(auth, keys, genuine):
    for changes in ({"aud": "another-app"}, {"iss": "someone-else"}):
        with pytest.raises(InvalidToken):
            await verifier_for(auth, keys).verify(keys.sign(_claims(genuine[0], **changes)))


async def test_tampered_claims_are_refused(auth, keys, genuine):
    header, payload, signature = genuine[1].split(".")
    import base64
    import json

    raised = _claims(genuine[0], roles=["admin"])
    forged_payload = base64.urlsafe_b64encode(json.dumps(raised).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        await verifier_for(auth, keys).verify(f"{header}.{forged_payload}.{signature}")


async def test_garbage_and_unknown_kid_are_refused(auth, keys, genuine):
    verifier = verifier_for(auth, keys)
    with pytest.raises(InvalidToken):
        await verifier.verify("not.a.token")
    other = SigningKeys(Ed25519PrivateKey.generate())
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(other.sign(genuine[0]))


@pytest.mark.parametrize("limit", [1, 2])
async def test_bcrypt_runs_at_most_max_concurrent_hashes_at_once(make_auth, redis, monkeypatch, limit):
    # Six logins at once for one account: more than the lockout lets in flight by default.
    auth = make_auth(redis, max_concurrent_hashes=limit, lockout_attempts=10)
    _, address = await registered(auth)
    running, peak, lock = 0, 0, threading.Lock()
    real_verify = actors.auth.service.verify_password

    def counting_verify(password, password_hash):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.05)  # long enough for the other logins to pile up behind it
            return real_verify(password, password_hash)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(actors.auth.service, "verify_password", counting_verify)
    pairs = await asyncio.gather(*(auth.login(StaffLogin(email=address, password=PASSWORD), "10.3.0.1")
                                   for _ in range(6)))
    assert len({p.refresh_token for p in pairs}) == 6
    assert peak == limit
