"""What authentication costs, in one run:

1. token validation per request, in-process (signature, claims, and the revocation check in
   the real Redis), as microseconds median and p99, against decoding the same token without
   any check as the baseline;
2. login throughput at the configured bcrypt cost (AUTH_BCRYPT_ROUNDS, default 12) through
   the gateway, against one bcrypt verify in this process;
3. p99 of GET /orders/{id} (as staff, at a steady 16 connections) while logins run flat
   out, against the same without logins.

    .venv/bin/python -m bench.auth_tokens [--duration 15]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.auth.domain import hash_password, verify_password
from actors.auth.keys import SigningKeys
from actors.auth.settings import AuthSettings
from actors.common.redis import create_redis
from actors.common.security import RedisSessionCheck, TokenVerifier
from bench.support import (ADMIN, RESULTS, BenchWorld, parse_wrk, post_script, start_stack, stop_on_signals, wrk,
                           wrk_command)

ISSUER, AUDIENCE = "orderflow-auth", "orderflow"


class NeverAsked:
    async def is_revoked(self, session_id: str, token: str) -> bool:
        raise AssertionError("Redis is up; the fallback must not be asked")


class NotRevoked:
    async def is_revoked(self, session_id: str, token: str) -> bool:
        return False


def percentiles_us(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {"median_us": statistics.median(samples) * 1e6, "p99_us": samples[int(len(samples) * 0.99)] * 1e6}


async def validation_cost(count: int, namespace: str) -> dict:
    keys = SigningKeys(Ed25519PrivateKey.generate())
    now = datetime.now(UTC)
    token = keys.sign({"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()),
                       "roles": ["warehouse"], "iat": now, "exp": now + timedelta(minutes=15)})
    redis = create_redis(AuthSettings().redis_url)
    verifier = TokenVerifier(keys, RedisSessionCheck(redis, fallback=NeverAsked(), namespace=namespace),
                             issuer=ISSUER, audience=AUDIENCE)
    signature_only = TokenVerifier(keys, NotRevoked(), issuer=ISSUER, audience=AUDIENCE)
    full, local, decode_only = [], [], []
    try:
        for _ in range(200):  # warm the connection and the key cache
            await verifier.verify(token)
        for _ in range(count):
            started = time.perf_counter()
            jwt.decode(token, options={"verify_signature": False})
            decode_only.append(time.perf_counter() - started)
            started = time.perf_counter()
            await verifier.verify(token)
            full.append(time.perf_counter() - started)
            started = time.perf_counter()
            await signature_only.verify(token)
            local.append(time.perf_counter() - started)
    finally:
        await redis.aclose()
    return {"verify (with Redis session check)": percentiles_us(full),
            "verify without session check": percentiles_us(local),
            "decode only (baseline)": percentiles_us(decode_only)}


def bcrypt_verify_s(rounds: int) -> float:
    hashed = hash_password("a long enough password", rounds)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        verify_password("a long enough password", hashed)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def gets_with_and_without_logins(base_url: str, token: str, order_id: str, seconds: int) -> dict:
    get_url = f"{base_url}/orders/{order_id}"
    login = post_script(json.dumps(ADMIN))
    wrk(get_url, 15, 16, token=token)  # warm-up past the autoscaler's upscale delay
    quiet = wrk(get_url, seconds, 16, token=token)
    command, lua = wrk_command(f"{base_url}/auth/login", seconds + 2, 8, script=login, threads=1, timeout_s=60)
    with lua:
        logins = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        time.sleep(1)  # let the logins start before the measured window
        busy = wrk(get_url, seconds, 16, token=token)
        login_result = parse_wrk(logins.communicate()[0])
    return {"GET without logins": quiet, "GET with logins flat out": busy, "logins (8 connections)": login_result}


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per HTTP measurement")
    parser.add_argument("--validations", type=int, default=20000)
    args = parser.parse_args()
    rounds = AuthSettings().bcrypt_rounds
    print(f"{os.cpu_count()} CPUs, bcrypt cost {rounds}\n", flush=True)
    results: dict = {}
    with BenchWorld("auth_bench") as world:
        results["validation"] = asyncio.run(validation_cost(args.validations, world.namespace))
        for name, r in results["validation"].items():
            print(f"  token {name:<34} median {r['median_us']:>7.1f} us  p99 {r['p99_us']:>7.1f} us", flush=True)
        results["bcrypt_verify_ms"] = bcrypt_verify_s(rounds) * 1000
        print(f"  one bcrypt verify at cost {rounds} in this process: {results['bcrypt_verify_ms']:.0f} ms "
              f"(at most {1000 / results['bcrypt_verify_ms'] * (os.cpu_count() or 1):.1f} logins/s "
              f"on {os.cpu_count()} cores)", flush=True)

        stack = start_stack("gateway + Serve", world)
        try:
            token = stack.login()
            order = httpx.post(f"{stack.base_url}/orders", json={
                "customer": {"email": "bench@example.com", "name": "Bench Mark"},
                "items": [{"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price": "9.90"}],
                "currency": "EUR"}, timeout=10).json()
            results["http"] = gets_with_and_without_logins(stack.base_url, token, order["id"], args.duration)
        finally:
            stack.stop()
    for name, r in results["http"].items():
        print(f"  {name:<26} {r['rps']:>7.1f} req/s  p50 {r['p50_ms']:>6.1f} ms  p99 {r['p99_ms']:>6.1f} ms"
              f"  non-2xx {r['non_2xx']}  timeouts {r['timeouts']}", flush=True)
    quiet, busy = results["http"]["GET without logins"], results["http"]["GET with logins flat out"]
    print(f"\nGET /orders/{{id}} p99 with logins / without: {busy['p99_ms'] / quiet['p99_ms']:.2f}"
          f"  (requests/s {busy['rps'] / quiet['rps']:.2f})")
    verify = results["validation"]
    print(f"token validation / bare decode (median): "
          f"{verify['verify (with Redis session check)']['median_us'] / verify['decode only (baseline)']['median_us']:.1f}x")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"auth_tokens-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
