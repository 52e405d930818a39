"""The README's dashboard screenshot (docs/screenshots/dashboard.png) from real data: the
whole stack as `make run` starts it (the e2e stack, on ports and databases of its own), a
real Prometheus (Debian's) scraping it with monitoring/prometheus.yml's jobs (every job aimed
at the stack's ports, tests/e2e/prometheus.py, scrape and evaluation every 5 s), a few minutes
of warehouse traffic through the gateway, then monitoring/grafana/render.py draws the
Orderflow dashboard's panels from Prometheus' API. Prints the dashboard metrics Prometheus
has not seen (none expected) and the request counts.

The traffic: customers place orders in PLN, EUR and USD; staff move most of them along the
status machine (some to delivered, some cancelled); staff and customers (by order number) log
in (and some staff out again), with some wrong passwords and one account locked out; a desktop
agent is connected over the WebSocket the whole time, so notifications are stored and pushed;
halfway, one message that is no order event goes to the orders exchange and on to the
dead-letter queue.

    flock /tmp/orderflow-e2e.lock .venv/bin/python -m bench.dashboard_screenshot [--minutes 8]
"""

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import websockets

from bench.support import stop_on_signals
from deployments.stack import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, ROOT
from monitoring.grafana import queries, render
from tests.e2e.conftest import Stack, running
from tests.e2e.prometheus import scraping
from tests.e2e.support import publish_broken_event
from tests.factories import order_body

SCRAPE_INTERVAL_S = 5
NEXT = {"new": "paid", "paid": "picking", "picking": "packed", "packed": "shipped", "shipped": "delivered"}
CURRENCIES = {"PLN": (20, 400), "EUR": (5, 120), "USD": (5, 150)}


class Traffic:
    def __init__(self, url: str, token: str):
        self.url = url
        self.staff = httpx.AsyncClient(base_url=url, timeout=25, headers={"Authorization": f"Bearer {token}"})
        self.anonymous = httpx.AsyncClient(base_url=url, timeout=25)
        self.statuses: Counter = Counter()
        self.placed: list[dict] = []

    def count(self, response: httpx.Response) -> httpx.Response:
        self.statuses[response.status_code] += 1
        return response

    async def customer(self, stop: asyncio.Event) -> None:
        """Orders placed in three currencies, at a rate that changes over time."""
        while not stop.is_set():
            currency = random.choices(list(CURRENCIES), weights=(6, 3, 1))[0]
            low, high = CURRENCIES[currency]
            items = [{"sku": f"SKU-{random.randint(1, 40):02d}", "name": "Item", "quantity": random.randint(1, 3),
                      "unit_price": f"{random.uniform(low, high):.2f}"} for _ in range(random.randint(1, 3))]
            response = self.count(await self.anonymous.post(
                "/orders", json=order_body(currency=currency, items=items),
                headers={"Idempotency-Key": uuid.uuid4().hex}))
            if response.status_code == 201:
                self.placed.append(response.json())
            await asyncio.sleep(random.uniform(0.5, 2.5) * (1.6 if int(time.time() / 90) % 2 else 1.0))

    async def warehouse(self, stop: asyncio.Event) -> None:
        """Staff move orders along: most one step at a time, some cancelled."""
        while not stop.is_set():
            if not self.placed:
                await asyncio.sleep(0.5)
                continue
            order = random.choice(self.placed)
            if order["status"] in ("new", "paid") and random.random() < 0.08:
                response = self.count(await self.staff.post(f"/orders/{order['id']}/cancel"))
            elif order["status"] in NEXT:
                response = self.count(await self.staff.post(
                    f"/orders/{order['id']}/status", json={"status": NEXT[order["status"]]},
                    headers={"If-Match": f'"{order["version"]}"'}))
            else:
                self.placed.remove(order)
                continue
            if response.status_code == 200:
                order.update(response.json())
            await asyncio.sleep(random.uniform(0.3, 1.2))

    async def logins(self, stop: asyncio.Event) -> None:
        """Staff and customers logging in; now and then a wrong password; once, an account
        tried until it locks."""
        locked = False
        while not stop.is_set():
            roll = random.random()
            if roll < 0.1:  # a staff member signs in and out again
                signed_in = self.count(await self.anonymous.post(
                    "/auth/login", json={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}))
                if signed_in.status_code == 200:
                    self.count(await self.anonymous.post("/auth/logout", headers={
                        "Authorization": f"Bearer {signed_in.json()['access_token']}"}))
                continue
            if roll < 0.4:
                body = {"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}
            elif roll < 0.75 and self.placed:
                order = random.choice(self.placed)
                body = {"order_number": order["number"], "email": order["customer"]["email"]}
            else:
                body = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "not-the-password"}
            self.count(await self.anonymous.post("/auth/login", json=body))
            if not locked and time.monotonic() % 240 > 120:
                victim = {"email": "night-shift@example.com", "password": "guessing"}
                for _ in range(7):
                    self.count(await self.anonymous.post("/auth/login", json=victim))
                locked = True
            await asyncio.sleep(random.uniform(1, 4))

    async def agent(self, token: str, stop: asyncio.Event) -> None:
        """A desktop agent: connected to the notifications WebSocket, reading what comes."""
        ws_url = self.url.replace("http", "ws", 1) + f"/notifications/ws?token={token}"
        while not stop.is_set():
            with contextlib.suppress(OSError, websockets.WebSocketException):
                async with websockets.connect(ws_url) as socket:
                    while not stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(socket.recv(), 1)
            await asyncio.sleep(1)

    async def broken_event(self, stack: Stack, after_s: float) -> None:
        """One message on the orders exchange that is no order event: the consumer moves it to
        the dead-letter queue (dead-lettered, DLQ depth 1, the OrderflowDeadLetters alert)."""
        await asyncio.sleep(after_s)
        await publish_broken_event(stack)

    async def run(self, stack: Stack, token: str, seconds: float) -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(flow) for flow in (
            self.customer(stop), self.customer(stop), self.warehouse(stop), self.warehouse(stop),
            self.logins(stop), self.agent(token, stop), self.broken_event(stack, seconds / 2))]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.staff.aclose()
        await self.anonymous.aclose()


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=8, help="how long the traffic runs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots" / "dashboard.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="of-dashboard-") as tmp:
        tmp = Path(tmp)
        for stack in running(Stack(tmp)):
            with scraping(stack, tmp, SCRAPE_INTERVAL_S) as url:
                token = httpx.post(f"{stack.url}/auth/login", timeout=30,
                                   json={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}).json()["access_token"]
                traffic = Traffic(stack.url, token)
                started = time.time()
                asyncio.run(traffic.run(stack, token, args.minutes * 60))
                time.sleep(3 * SCRAPE_INTERVAL_S)  # the last scrapes
                names = httpx.get(f"{url}/api/v1/label/__name__/values", timeout=30).json()["data"]
                missing = queries.missing_metrics(queries.dashboards(), names)
                minutes = round((time.time() - started) / 60 + 1)
                shown = render.render(url, minutes, args.out)
                print(f"requests by status: {dict(sorted(traffic.statuses.items()))}")
                print(f"dashboard metrics Prometheus has not seen: {missing or 'none'}")
                print(f"series per panel: {shown}")
                print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
