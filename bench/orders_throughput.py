"""Orders API throughput: the full stack (nginx gateway + Ray Serve) against the same
FastAPI app under bare uvicorn, on the same database, in one run.

For each target it measures GET /orders/{id} and POST /orders with wrk at 32 connections
and prints requests/s, p50 and p99 and the ratio to the bare server. Needs wrk
(Debian: apt-get install wrk) and the three servers `make run` needs.

    .venv/bin/python bench/orders_throughput.py [--duration 15] [--connections 32]
"""

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika
import httpx

from actors.common.db import drop_database, ensure_database, migrate
from actors.common.settings import CommonSettings
from actors.orders.settings import MIGRATIONS
from deployments.stack import StackSettings, free_port, stack_processes

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
AMQP_URL = CommonSettings().amqp_url

ORDER = {
    "customer": {"email": "bench@example.com", "name": "Bench Mark"},
    "items": [{"sku": "MUG-01", "name": "Enamel mug", "quantity": 2, "unit_price": "39.90"}],
    "currency": "PLN",
}
POST_SCRIPT = f"""
wrk.method = "POST"
wrk.body = '{json.dumps(ORDER)}'
wrk.headers["Content-Type"] = "application/json"
"""


def wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} not ready within {timeout_s}s")


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: int, connections: int, script: str | None = None) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script:
            lua.write(script)
            lua.flush()
            command[1:1] = ["-s", lua.name]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": to_ms(percentiles["50"]),
        "p99_ms": to_ms(percentiles["99"]),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


class Target:
    def __init__(self, name: str, base_url: str, process: subprocess.Popen):
        self.name, self.base_url, self.process = name, base_url, process


def start_bare(env: dict) -> Target:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "python"), str(HERE / "bare_server.py"), "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/orders/ready", process)
    return Target("bare uvicorn", url, process)


def start_stack(name: str, env: dict, run_dir: Path, throughput_mode: bool) -> tuple[Target, StackSettings]:
    """`orderflow run` as `make run` starts it; the target is the gateway."""
    settings = StackSettings(run_dir=run_dir, serve_port=free_port(), gateway_port=free_port())
    env = env | {
        "ORDERFLOW_RUN_DIR": str(run_dir),
        "ORDERFLOW_SERVE_PORT": str(settings.serve_port),
        "ORDERFLOW_GATEWAY_PORT": str(settings.gateway_port),
        "ORDERFLOW_THROUGHPUT_MODE": "1" if throughput_mode else "0",
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    log = (run_dir / "stack.log").open("w")
    process = subprocess.Popen([str(BIN / "orderflow"), "run", "--no-seed"], env=env, stdout=log, stderr=log)
    wait_ready(f"{settings.gateway_url}/orders/ready", process)
    return Target(name, settings.gateway_url, process), settings


def stop(target: Target, settings: StackSettings | None = None) -> None:
    target.process.send_signal(signal.SIGINT)
    target.process.wait(120)
    if settings is not None:
        for pid in stack_processes(settings):
            os.kill(pid, signal.SIGKILL)


def measure(target: Target, seconds: int, connections: int) -> dict:
    order = httpx.post(f"{target.base_url}/orders", json=ORDER, timeout=10).json()
    get_url = f"{target.base_url}/orders/{order['id']}"
    # Warm-up longer than the autoscaler's upscale delay (10 s), so every target is measured
    # with the replicas it settles on under this load rather than while a replica starts.
    wrk(get_url, 15, connections)
    results = {}
    for endpoint, url, script in [
        ("GET /orders/{id}", get_url, None),
        ("POST /orders", f"{target.base_url}/orders", POST_SCRIPT),
    ]:
        r = results[endpoint] = wrk(url, seconds, connections, script) | {"replicas": serve_replicas()}
        print(f"  {target.name:<28} {endpoint:<18} {r['rps']:>8.0f} req/s  p50 {r['p50_ms']:>6.1f} ms"
              f"  p99 {r['p99_ms']:>6.1f} ms  non-2xx {r['non_2xx']}  replicas {r['replicas']}", flush=True)
    return results


def serve_replicas() -> int:
    """Orders replicas running now (Ray names its worker processes after the actor)."""
    count = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            count += cmdline.read_bytes().startswith(b"ray::ServeReplica:orders")
        except OSError:
            continue
    return count


async def clean_up(database_url: str, exchange: str) -> None:
    await drop_database(database_url)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(exchange)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    database_url = f"postgresql://postgres@127.0.0.1:5432/orders_bench_{suffix}"
    env = os.environ | {
        "ORDERS_DATABASE_URL": database_url,
        "EVENTS_EXCHANGE": f"orders_bench_{suffix}",
        "LOG_LEVEL": "WARNING",
    }
    asyncio.run(ensure_database(database_url))
    asyncio.run(migrate(database_url, MIGRATIONS))
    results: dict[str, dict] = {}
    work = Path(tempfile.mkdtemp(prefix="orderflow-bench-"))
    print(f"{args.connections} connections, {args.duration}s per endpoint, {os.cpu_count()} CPUs\n", flush=True)
    try:
        bare = start_bare(env)
        try:
            results[bare.name] = measure(bare, args.duration, args.connections)
        finally:
            stop(bare)
        for name, throughput in [("gateway + Serve (throughput)", True), ("gateway + Serve (default)", False)]:
            target, settings = start_stack(name, env, work / name.replace(" ", "_"), throughput)
            try:
                results[name] = measure(target, args.duration, args.connections)
                # The same stack without the nginx hop, to show what the gateway costs.
                direct = Target(name.replace("gateway + ", "") + " direct", settings.serve_url, target.process)
                results[direct.name] = measure(direct, args.duration, args.connections)
            finally:
                stop(target, settings)
    finally:
        asyncio.run(clean_up(database_url, env["EVENTS_EXCHANGE"]))

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
