"""The auth service (no HTTP) on a database of the test module's own and the test's Redis
namespace, with the Orders service on the session's orders database behind it."""

import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.auth.domain import Registration
from actors.auth.keys import SigningKeys
from actors.auth.service import AuthService
from actors.auth.settings import MIGRATIONS, AuthSettings
from actors.common.db import create_pool, with_database
from actors.orders.service import OrdersService
from tests.factories import PASSWORD, unique_email
from tests.integration.conftest import POSTGRES_URL, SUFFIX
from tests.integration.support import migrated_database


@pytest.fixture(scope="module")
async def auth_pool():
    url = with_database(POSTGRES_URL, f"auth_it_{SUFFIX}_{uuid.uuid4().hex[:6]}")
    async with migrated_database(url, MIGRATIONS):
        pool = await create_pool(url, max_size=10)
        yield pool
        await pool.close()


@pytest.fixture(scope="module")
def keys():
    return SigningKeys(Ed25519PrivateKey.generate())


@pytest.fixture
async def orders(pool):
    return OrdersService(pool, timeout_s=5)


@pytest.fixture
def make_auth(auth_pool, keys, orders, redis_namespace):
    """`make_auth(redis, **settings)`: an auth service on that Redis client (a live or a dead
    one), with quick test settings changed by `settings`."""

    def make(redis, **settings) -> AuthService:
        config = AuthSettings(**({"redis_namespace": redis_namespace, "bcrypt_rounds": 4, "lockout_attempts": 5,
                                  "lockout_window_s": 900} | settings))
        return AuthService(auth_pool, redis, keys, config, orders.find_for_customer, orders.claim_for_account)

    return make


async def registered(auth: AuthService, name: str = "user"):
    """A new account with PASSWORD: the user and its address."""
    address = unique_email(name)
    await auth.register(Registration(email=address, password=PASSWORD, name=name))
    user = next(u for u in await auth.users() if u.email == address)
    return user, address
