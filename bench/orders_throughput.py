"""Orders API throughput: the full stack (nginx gateway + Ray Serve) against the same
FastAPI apps under bare uvicorn, on the same databases, in one run.

For each target it measures GET /orders/{id} (as warehouse staff, so every request verifies
a token) and POST /orders (guest checkout) with wrk at 32 connections and prints requests/s,
p50 and p99 and the ratio to the bare server. Needs wrk (Debian: apt-get install wrk) and
the three servers `make run` needs.

    .venv/bin/python -m bench.orders_throughput [--duration 15] [--connections 32]
"""

import argparse
import json
import os
import time

import httpx

from bench.support import (RESULTS, BenchWorld, Target, post_script, serve_replicas, start_bare, start_stack,
                           stop_on_signals, wrk)

ORDER = {
    "customer": {"email": "bench@example.com", "name": "Bench Mark"},
    "items": [{"sku": "MUG-01", "name": "Enamel mug", "quantity": 2, "unit_price": "39.90"}],
    "currency": "PLN",
}


def measure(target: Target, seconds: int, connections: int) -> dict:
    """GET by id as warehouse staff (token checked on every request), POST as a guest."""
    token = target.login()
    order = httpx.post(f"{target.base_url}/orders", json=ORDER, timeout=10).json()
    get_url = f"{target.base_url}/orders/{order['id']}"
    # Warm-up longer than the autoscaler's upscale delay (10 s), so every target is measured
    # with the replicas it settles on under this load rather than while a replica starts.
    wrk(get_url, 15, connections, token=token)
    results = {}
    for endpoint, url, script, auth in [
        ("GET /orders/{id}", get_url, None, token),
        ("POST /orders", f"{target.base_url}/orders", post_script(json.dumps(ORDER)), None),
    ]:
        r = results[endpoint] = wrk(url, seconds, connections, script=script, token=auth)
        r["replicas"] = serve_replicas("orders")
        print(f"  {target.name:<28} {endpoint:<18} {r['rps']:>8.0f} req/s  p50 {r['p50_ms']:>6.1f} ms"
              f"  p99 {r['p99_ms']:>6.1f} ms  non-2xx {r['non_2xx']}  replicas {r['replicas']}", flush=True)
    return results


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    results: dict[str, dict] = {}
    print(f"{args.connections} connections, {args.duration}s per endpoint, {os.cpu_count()} CPUs\n", flush=True)
    with BenchWorld("orders_bench") as world:
        bare = start_bare(world)
        try:
            results[bare.name] = measure(bare, args.duration, args.connections)
        finally:
            bare.stop()
        for name, throughput in [("gateway + Serve (throughput)", True), ("gateway + Serve (default)", False)]:
            target = start_stack(name, world, throughput_mode=throughput)
            try:
                results[name] = measure(target, args.duration, args.connections)
                # The same stack without the nginx hop, to show what the gateway costs.
                direct = Target(name.replace("gateway + ", "") + " direct", target.stack.serve_url, target.process)
                results[direct.name] = measure(direct, args.duration, args.connections)
            finally:
                target.stop()

    baseline = results["bare uvicorn"]
    print("\nratio to bare uvicorn (requests/s):")
    for name, by_endpoint in results.items():
        ratios = ", ".join(f"{ep} {r['rps'] / baseline[ep]['rps']:.2f}" for ep, r in by_endpoint.items())
        print(f"  {name:<28} {ratios}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"orders_throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"connections": args.connections, "duration_s": args.duration,
                               "results": results}, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
