"""The login lockout (actors/auth/lockout.py) on real Redis: per account, a race of parallel
wrong passwords, the doubling delay and the reset on success; per client address, a bound
that slows failures but never refuses a correct password."""

import asyncio

import pytest

from actors.auth.domain import OrderLogin, StaffLogin
from actors.common.errors import TooManyRequests, Unauthorized
from tests.factories import PASSWORD, new_order, unique_email
from tests.integration.auth_support import auth_pool, keys, make_auth, orders, registered  # noqa: F401 (fixtures)
from tests.support import wait_until

WRONG = "not the password at all"


async def attempt(auth, address: str, password: str, client: str = "10.9.0.1") -> int:
    """The HTTP status a login would get."""
    try:
        await auth.login(StaffLogin(email=address, password=password), client)
        return 200
    except TooManyRequests:
        return 429
    except Unauthorized:
        return 401


async def retry_after(auth, address: str, password: str) -> int:
    """Retry-After of a login that must be refused with 429 (the edge sends retry_after_s as it)."""
    with pytest.raises(TooManyRequests) as refused:
        await auth.login(StaffLogin(email=address, password=password), "10.9.0.2")
    return refused.value.retry_after_s


async def lock_ended(auth, address: str) -> None:
    key = f"{auth.settings.redis_namespace}:auth:lock:account:{address}"

    async def gone() -> bool:
        return not await auth.redis.exists(key)

    await wait_until(gone, timeout_s=30, what="the lock to end")


async def test_parallel_wrong_passwords_reach_the_hash_at_most_five_times(make_auth, redis):
    """Issue 10, item 2: 25 at once all got 401 when the count was checked before the hash
    and incremented after it."""
    auth = make_auth(redis, max_concurrent_hashes=2)
    _, address = await registered(auth)
    statuses = await asyncio.gather(*(attempt(auth, address, WRONG) for _ in range(25)))
    assert statuses.count(401) <= 5 and statuses.count(401) + statuses.count(429) == 25, statuses
    assert await attempt(auth, address, PASSWORD) == 429  # the right password waits too


async def test_the_lock_doubles_up_to_its_bound_and_a_success_resets_it(make_auth, redis):
    auth = make_auth(redis, lockout_delay_s=1, lockout_max_delay_s=2)
    _, address = await registered(auth)

    async def fail_until_locked() -> int:
        assert [await attempt(auth, address, WRONG) for _ in range(5)] == [401] * 5
        return await retry_after(auth, address, PASSWORD)  # the sixth, even the right password

    assert await fail_until_locked() == 1
    await lock_ended(auth, address)
    assert await fail_until_locked() == 2  # doubled
    await lock_ended(auth, address)
    assert await fail_until_locked() == 2  # bounded by lockout_max_delay_s
    await lock_ended(auth, address)

    assert await attempt(auth, address, PASSWORD) == 200  # resets count and delay
    assert [await attempt(auth, address, WRONG) for _ in range(4)] == [401] * 4
    assert await attempt(auth, address, PASSWORD) == 200  # four failures and a success: no lock
    assert await fail_until_locked() == 1


async def test_many_failures_from_one_address_never_refuse_a_correct_password(make_auth, redis):
    """A warehouse behind one NAT address: past the address's bound its failing attempts are
    slowed (429), while every account that is not itself locked still signs in."""
    auth = make_auth(redis, address_failures=20, address_delay_s=0)
    office = "10.10.10.10"
    colleagues = [(await registered(auth, f"clerk{n}"))[1] for n in range(3)]
    statuses = [await attempt(auth, unique_email(f"typo{n}"), WRONG, office) for n in range(30)]
    assert statuses == [401] * 20 + [429] * 10
    for colleague in colleagues:
        assert await attempt(auth, colleague, WRONG, office) == 429  # a failure, slowed
        assert await attempt(auth, colleague, PASSWORD, office) == 200
    assert await attempt(auth, unique_email("elsewhere"), WRONG, "10.10.10.11") == 401  # other addresses as before


async def test_order_number_logins_lock_per_order(make_auth, redis, orders):
    auth = make_auth(redis)
    order, _ = await orders.create(new_order(unique_email("buyer")), by="t")
    for n in range(5):
        with pytest.raises(Unauthorized):
            await auth.login_with_order(OrderLogin(order_number=order.number, email=unique_email(f"guess{n}")), f"10.11.0.{n}")
    with pytest.raises(TooManyRequests):
        await auth.login_with_order(OrderLogin(order_number=order.number, email=str(order.customer.email)), "10.11.1.1")


async def test_attempts_that_never_finish_do_not_hold_the_account(make_auth, redis):
    """A login cancelled while it waits for the hash (its client went away: Serve cancels the
    request) or failing on PostgreSQL gives its reservation back; five of them made every
    login of that account, the correct one included, a 429 for a minute."""
    auth = make_auth(redis, max_concurrent_hashes=1)
    _, address = await registered(auth)
    pending = f"{auth.settings.redis_namespace}:auth:pending:account:{address}"

    async def all_reserved() -> bool:
        return await redis.get(pending) == "5"

    async with auth._hashing:  # every login waits at the hash, its attempt reserved
        waiting = [asyncio.create_task(attempt(auth, address, WRONG)) for _ in range(5)]
        await wait_until(all_reserved, what="five attempts reserved")
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
    assert await attempt(auth, address, PASSWORD) == 200


async def test_one_ipv6_network_counts_as_one_address(make_auth, redis):
    """An IPv6 host has a whole /64 to itself: counted per address, it passed the address
    bound by taking a new address for each attempt."""
    auth = make_auth(redis, address_failures=20, address_delay_s=0)
    statuses = [await attempt(auth, unique_email(f"v6typo{n}"), WRONG, f"2001:db8:7:1::{n:x}") for n in range(30)]
    assert statuses == [401] * 20 + [429] * 10
    assert await attempt(auth, unique_email("v6other"), WRONG, "2001:db8:7:2::1") == 401  # another network
