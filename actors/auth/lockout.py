"""Brute-force limits on logins (OWASP ASVS 2.2 / NIST 800-63B 5.2.2), in Redis.

Per account (an email, or an order number for the order-number login and claim-order):
after `lockout_attempts` consecutive failures every attempt is 429 with Retry-After for a
delay that starts at `lockout_delay_s` and doubles with each lock up to
`lockout_max_delay_s`; the correct password included. A success resets both. Each attempt
is reserved *before* the password is checked, in one Lua script, counting the failures and
the attempts being checked together, so parallel attempts cannot all get past the check: of
N at once, at most `lockout_attempts` reach the hash (the others get 429 with Retry-After: 1,
without locking the account: a burst of correct logins does not lock it).

Per client address: a much higher bound (`address_failures` in `address_window_s`), for
many accounts tried from one place. Past it, that address's *failing* attempts are slowed
(answered after `address_delay_s`, with 429); a correct password for an account that is
not itself locked always succeeds, so a warehouse behind one NAT address is not locked out
by one person's typos.

While Redis is down logins are allowed (and not counted), as the rest of auth does.
"""

import asyncio
import contextlib
import ipaddress

from actors.auth.settings import AuthSettings
from actors.common.errors import TooManyRequests
from actors.common.logging import get_logger
from actors.common.metrics import LOCKOUTS, LOGINS
from actors.common.redis import REDIS_ERRORS, count_in_window

log = get_logger("auth")

# Per account: `fail` counts consecutive failures, `pending` the attempts being checked right
# now, `lock` exists while the account is locked, `level` counts the locks (the delay doubles).

# KEYS: fail, pending, lock. ARGV: attempts, pending_ttl_s.
# Returns the lock's remaining milliseconds, -1 when `attempts` are already being checked or
# failed, else 0 (the attempt is reserved).
_BEGIN = """
local locked = redis.call('PTTL', KEYS[3])
if locked > 0 then return locked end
local used = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(redis.call('GET', KEYS[2]) or '0')
if used >= tonumber(ARGV[1]) then return -1 end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 0
"""

# KEYS: fail, pending, lock, level. ARGV: attempts, delay_s, max_delay_s, memory_s.
# Returns the milliseconds of the lock this failure started, or 0.
_FAILED = """
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if n < tonumber(ARGV[1]) then return 0 end
local level = redis.call('INCR', KEYS[4])
redis.call('EXPIRE', KEYS[4], ARGV[4])
local delay_ms = math.floor(math.min(tonumber(ARGV[2]) * 2 ^ (level - 1), tonumber(ARGV[3])) * 1000)
redis.call('SET', KEYS[3], '1', 'PX', delay_ms)
redis.call('DEL', KEYS[1])
return delay_ms
"""

# KEYS: fail, pending, level.
_SUCCEEDED = """
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
redis.call('DEL', KEYS[1], KEYS[3])
return 0
"""

# KEYS: pending. An attempt that ended without an answer (cancelled, an error) gives back its place.
_ABANDONED = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0
"""

# An attempt that died half-way (a replica stopped) is not counted as pending for longer.
PENDING_TTL_S = 60

LOCKED = "Too many failed logins for this account; wait before trying again."
BUSY = "Too many logins for this account at once; try again in a moment."
SLOWED = "Too many failed logins from your network; wait before trying again."


def _network(client: str) -> str:
    """What the per-address bound counts: an IPv4 address, or an IPv6 address's /64 (one
    host commonly has the whole /64 and could take a new address for every attempt)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _login_kind(account: str) -> str:
    """`password` for an account's email, `order` for an order number (the metrics' label)."""
    return "order" if account.startswith("order:") else "password"


def _retry_after(milliseconds: float) -> int:
    return max(int(-(-milliseconds // 1000)), 1)


class Lockout:
    def __init__(self, redis, settings: AuthSettings):
        self.redis = redis
        self.settings = settings
        self._begin = redis.register_script(_BEGIN)
        self._failed = redis.register_script(_FAILED)
        self._succeeded = redis.register_script(_SUCCEEDED)
        self._abandoned = redis.register_script(_ABANDONED)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.settings.redis_namespace}:auth:{kind}:{name}"

    async def begin(self, account: str) -> None:
        """Reserve this attempt before the password is checked; TooManyRequests while the
        account is locked, or while as many attempts as may fail are being checked."""
        keys = [self._key(k, account) for k in ("fail", "pending", "lock")]
        try:
            answer = await self._begin(keys=keys, args=[self.settings.lockout_attempts, PENDING_TTL_S])
        except REDIS_ERRORS as exc:
            log.warning("lockout counters unavailable (%s); login allowed", exc)
            return
        if answer:
            LOGINS.labels(_login_kind(account), "locked").inc()
        if answer == -1:
            raise TooManyRequests(BUSY, retry_after_s=1)
        if answer:
            raise TooManyRequests(LOCKED, retry_after_s=_retry_after(answer))

    @contextlib.asynccontextmanager
    async def checking(self, account: str):
        """`begin`, then the check of the credentials inside the block: if the block ends with
        an exception (the client went away and the request was cancelled, PostgreSQL failed)
        the attempt was neither a success nor a failure, and its reservation is given back.
        Call `failed` or `succeeded` after the block."""
        await self.begin(account)
        try:
            yield
        except BaseException:
            try:
                await asyncio.shield(self._abandoned(keys=[self._key("pending", account)]))
            except REDIS_ERRORS:
                pass  # the reservation expires by itself (PENDING_TTL_S)
            raise

    async def succeeded(self, account: str) -> None:
        """A success ends the count of failures and the doubling of the delay."""
        LOGINS.labels(_login_kind(account), "success").inc()
        try:
            await self._succeeded(keys=[self._key(k, account) for k in ("fail", "pending", "level")])
        except REDIS_ERRORS:
            pass  # the counters expire by themselves

    async def failed(self, account: str, client: str) -> None:
        """Count a failure for the account (locking it at the bound) and for the client
        address; past the address's bound the answer is slowed down and made a 429."""
        s = self.settings
        LOGINS.labels(_login_kind(account), "failure").inc()
        try:
            locked_ms = await self._failed(keys=[self._key(k, account) for k in ("fail", "pending", "lock", "level")],
                                           args=[s.lockout_attempts, s.lockout_delay_s, s.lockout_max_delay_s,
                                                 s.lockout_window_s])
            if locked_ms:
                LOCKOUTS.labels(_login_kind(account)).inc()
            from_address = await count_in_window(self.redis, self._key("fail", f"ip:{_network(client)}"),
                                                 s.address_window_s)
        except REDIS_ERRORS as exc:
            log.warning("failed login not counted (%s)", exc)
            return
        if from_address > s.address_failures:
            await asyncio.sleep(s.address_delay_s)
            raise TooManyRequests(SLOWED, retry_after_s=_retry_after(s.address_delay_s * 1000))
