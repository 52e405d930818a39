"""Notification latency: from a status-change request returning at the gateway to the
desktop agent handing the notification to D-Bus (dunst under Xvfb on a private bus).

The whole stack as `make run` starts it, 240 orders, then 20 status changes per second
for one minute (each order walks paid → picking → packed → shipped → delivered); prints
p50/p90/p99/max. Target: p99 under 500 ms.

    python bench/notification_latency.py [--rate 20] [--seconds 60]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aio_pika
import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.common.db import drop_database  # noqa: E402
from actors.common.settings import CommonSettings  # noqa: E402
from actors.notification.consumer import dead_letter_queue_name, retry_queue_name  # noqa: E402
from actors.notification.settings import NotificationSettings  # noqa: E402
from bench.support import ADMIN, BIN, BenchWorld, start_stack, stop_on_signals, wait_serving  # noqa: E402
from tests.e2e.desktop import running_desktop, wait_for  # noqa: E402

STEPS = ["paid", "picking", "packed", "shipped", "delivered"]
BENCH_DUNSTRC = """
[global]
    monitor = 0
    width = 420
    origin = top-right
    notification_limit = 5
    history_length = 50
    idle_threshold = 0
[urgency_low]
    timeout = 1
[urgency_normal]
    timeout = 1
[urgency_critical]
    timeout = 1
"""


def agent_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def shown(path: Path) -> list[dict]:
    return [e for e in agent_log(path) if e.get("notification_id") is not None and e.get("shown")]


async def place_orders(base: str, token: str, count: int) -> list[dict]:
    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        orders = []
        for n in range(count):
            response = await client.post("/orders", json={
                "customer": {"email": f"bench{n}@example.com", "name": "Bench"}, "currency": "EUR",
                "items": [{"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price": "10.00"}]})
            response.raise_for_status()
            orders.append(response.json())
        return orders


async def change_statuses(base: str, token: str, orders: list[dict], rate: float, total: int) -> dict:
    """Send `total` status changes at `rate` per second; returns {(order_id, status): returned_at}."""
    returned: dict[tuple[str, str], float] = {}
    failures = []
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        async def change(order: dict, step: int) -> None:
            status = STEPS[step]
            response = await client.post(f"/orders/{order['id']}/status", json={"status": status},
                                         headers={"If-Match": f'"{step + 1}"'})
            if response.status_code != 200:
                failures.append(response.status_code)
                return
            returned[(order["id"], status)] = time.time()

        start = time.monotonic()
        tasks = []
        for i in range(total):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            order, step = orders[i % len(orders)], i // len(orders)
            tasks.append(asyncio.create_task(change(order, step)))
        await asyncio.gather(*tasks)
    if failures:
        print(f"  {len(failures)} status changes failed: {sorted(set(failures))}")
    return returned


async def stage_times(orders_db: str, notifications_db: str) -> dict[tuple[str, str], tuple[float, float]]:
    """For each notification, when the relay claimed its event for publishing (outbox
    published_at) and when the consumer stored it (notifications created_at)."""
    orders, notifications = await asyncpg.connect(orders_db), await asyncpg.connect(notifications_db)
    try:
        claimed = {r["event_id"]: r["published_at"].timestamp()
                   for r in await orders.fetch("SELECT event_id, published_at FROM outbox")}
        rows = await notifications.fetch("SELECT event_id, order_id, status, created_at FROM notifications")
    finally:
        await orders.close()
        await notifications.close()
    return {(str(r["order_id"]), r["status"]): (claimed.get(r["event_id"]), r["created_at"].timestamp())
            for r in rows if r["event_id"] in claimed}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--agent-via", choices=["gateway", "serve"], default="gateway",
                        help="the agent connects through nginx (as deployed) or straight to Serve's port")
    parser.add_argument("--serve-proxy", choices=["throughput", "default"], default="throughput",
                        help="Serve's ingress: HAProxy (throughput mode, as `make run`) or its default proxy")
    args = parser.parse_args()
    total = int(args.rate * args.seconds)
    orders_needed = -(-total // len(STEPS))

    with BenchWorld("notifylat") as world:
        suffix = world.namespace
        notifications_db = f"postgresql://postgres@127.0.0.1:5432/{suffix}_notifications"
        queue = f"{suffix}_notifications"
        world.env |= {"NOTIFY_DATABASE_URL": notifications_db, "NOTIFY_QUEUE": queue}
        target = None
        agent = None
        try:
            print("starting the stack ...", flush=True)
            target = start_stack("notification latency", world, throughput_mode=args.serve_proxy == "throughput")
            wait_serving(target.process, f"{target.base_url}/notifications/ready")
            with running_desktop(world.work / "desktop", dunstrc=BENCH_DUNSTRC) as desktop:
                home = world.work / "agent-home"
                log_file = home / "state" / "orderflow" / "agent.log"
                env = {**world.env, **desktop.env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
                       "XDG_STATE_HOME": str(home / "state"), "BROWSER": "true",
                       "ORDERFLOW_AGENT_SERVER": target.base_url if args.agent_via == "gateway"
                       else target.stack.serve_url, "ORDERFLOW_AGENT_EMAIL": ADMIN["email"],
                       "ORDERFLOW_AGENT_PASSWORD": ADMIN["password"], "LOG_LEVEL": "INFO"}
                home.mkdir(parents=True, exist_ok=True)
                agent = subprocess.Popen([str(BIN / "orderflow-agent")], env=env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
                wait_for(lambda: any("connected to" in e["message"] for e in agent_log(log_file)),
                         "the agent to connect", 60)
                token = target.login()
                print(f"placing {orders_needed} orders ...", flush=True)
                orders = asyncio.run(place_orders(target.base_url, token, orders_needed))
                wait_for(lambda: len(shown(log_file)) >= orders_needed, "the new-order notifications", 120)
                print(f"{total} status changes at {args.rate:g}/s ...", flush=True)
                returned = asyncio.run(change_statuses(target.base_url, token, orders, args.rate, total))
                expected = orders_needed + len(returned)
                wait_for(lambda: len(shown(log_file)) >= expected, "every status notification", 120)
                on_dbus = {(e["order_id"], e["status"]): e["dbus_at"] for e in shown(log_file)
                           if e["kind"] != "order_created"}
                received = {(e["order_id"], e["status"]): e["received_at"] for e in shown(log_file)
                            if e["kind"] != "order_created"}
                reconnects = sum("connected to" in e["message"] for e in agent_log(log_file)) - 1
                stages = asyncio.run(stage_times(world.orders_db, notifications_db))
        finally:
            if agent is not None:
                agent.terminate()
                agent.wait(15)
            if target is not None:
                target.stop()

            async def clean_up():
                await drop_database(notifications_db)
                connection = await aio_pika.connect(CommonSettings().amqp_url)
                async with connection:
                    channel = await connection.channel()
                    for name in [queue, dead_letter_queue_name(queue),
                                 *(retry_queue_name(queue, d) for d in NotificationSettings().retry_delays_s)]:
                        await channel.queue_delete(name)

            asyncio.run(clean_up())

    latencies = [(on_dbus[key] - at) * 1000 for key, at in returned.items() if key in on_dbus]
    missing = len(returned) - len(latencies)
    print(f"\nnotification latency, status change returned → handed to D-Bus "
          f"({len(latencies)} of {len(returned)} changes at {args.rate:g}/s for {args.seconds}s, "
          f"{os.cpu_count()} cores):")
    print(f"  p50 {percentile(latencies, 50):.0f} ms   p90 {percentile(latencies, 90):.0f} ms   "
          f"p99 {percentile(latencies, 99):.0f} ms   max {max(latencies):.0f} ms   "
          f"mean {statistics.fmean(latencies):.0f} ms")
    parts = {"returned → relay claims the event": [], "relay claim → consumer stored it": [],
             "stored → agent received it": [], "received → D-Bus accepted it": []}
    for key, at in returned.items():
        if key in on_dbus and key in stages:
            claimed, stored = stages[key]
            steps = [claimed - at, stored - claimed, received[key] - stored, on_dbus[key] - received[key]]
            for name, value in zip(parts, steps, strict=True):
                parts[name].append(value * 1000)
    print("  where the time goes (each stage on its own, so the parts do not add up to the whole):")
    for name, values in parts.items():
        if values:
            print(f"    {name:<36} p50 {percentile(values, 50):>6.0f} ms   p99 {percentile(values, 99):>6.0f} ms"
                  f"   max {max(values):>6.0f} ms")
    print(f"  the agent reconnected {reconnects} times during the run (each one a catch-up read)")
    print(f"  target p99 < 500 ms: {'met' if percentile(latencies, 99) < 500 else 'NOT met'}"
          + (f"; {missing} notifications missing" if missing else ""))


if __name__ == "__main__":
    main()
