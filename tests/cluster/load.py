"""Load through the gateway, recorded per request: a steady order flow (create, pay, read)
whose acknowledged writes are checked afterwards, and plain read loads that drive one
application's autoscaling. Used by tests/cluster and bench/cluster_scaling."""

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx

from tests.factories import PASSWORD, order_body, unique_email

# Longer than Serve's request timeout (the e2e stack's 15 s): a request that outlives this
# hung instead of getting Serve's or the gateway's answer.
CLIENT_TIMEOUT_S = 25


@dataclass
class Record:
    statuses: Counter = field(default_factory=Counter)
    hangs: int = 0  # no answer within CLIENT_TIMEOUT_S
    broken: list[str] = field(default_factory=list)  # the connection failed: no HTTP answer
    created: list[str] = field(default_factory=list)  # orders answered 201
    paid: list[str] = field(default_factory=list)  # orders whose change to paid was answered 200
    failures: list[tuple[float, str, int]] = field(default_factory=list)  # (time, what, status)
    # Each failed answer's "<status> <problem type>", or its content type when not a problem:
    # which part answered (the gateway, Serve, a service).
    failed_kinds: Counter = field(default_factory=Counter)
    first_answers: dict[str, str] = field(default_factory=dict)  # kind -> its first body (cut)

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + self.hangs + len(self.broken)

    @property
    def failed(self) -> int:
        return self.total - sum(n for status, n in self.statuses.items() if status < 400)

    def summary(self) -> dict:
        """What the load got, for a test's output file."""
        return {"total": self.total, "failed": self.failed, "statuses": dict(self.statuses), "hangs": self.hangs,
                "broken": len(self.broken), "failed_kinds": dict(self.failed_kinds),
                "first_answers": self.first_answers}

    def answer(self, what: str, response: httpx.Response) -> bool:
        self.statuses[response.status_code] += 1
        if response.status_code >= 400:
            self.failures.append((time.monotonic(), what, response.status_code))
            kind = f"{response.status_code} {problem_type(response)}"
            self.failed_kinds[kind] += 1
            self.first_answers.setdefault(kind, f"{what}: {response.text[:300]}")
        return response.status_code < 400


def problem_type(response: httpx.Response) -> str:
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("application/problem+json"):
        try:
            return response.json().get("type", "?")
        except ValueError:
            return "a problem+json that is not JSON"
    return content_type or "no content type"


async def _call(record: Record, what: str, request) -> httpx.Response | None:
    try:
        response = await request
    except httpx.TimeoutException:
        record.hangs += 1
        record.failures.append((time.monotonic(), what, 0))
        return None
    except httpx.TransportError as exc:
        record.broken.append(f"{what}: {exc!r}")
        record.failures.append((time.monotonic(), what, -1))
        return None
    record.answer(what, response)
    return response


async def order_flow(client: httpx.AsyncClient, record: Record, stop: asyncio.Event) -> None:
    """One customer after another: place an order, pay it (If-Match its version), read it."""
    while not stop.is_set():
        created = await _call(record, "create", client.post(
            "/orders", json=order_body(), headers={"Idempotency-Key": uuid.uuid4().hex}))
        if created is None or created.status_code != 201:
            continue
        order_id = created.json()["id"]
        record.created.append(order_id)
        paid = await _call(record, "pay", client.post(
            f"/orders/{order_id}/status", json={"status": "paid"}, headers={"If-Match": '"1"'}))
        if paid is not None and paid.status_code == 200:
            record.paid.append(order_id)
        await _call(record, "read", client.get(f"/orders/{order_id}"))


async def reads(client: httpx.AsyncClient, record: Record, stop: asyncio.Event, path: str) -> None:
    while not stop.is_set():
        await _call(record, path, client.get(path))


async def sign_ins(client: httpx.AsyncClient, record: Record, stop: asyncio.Event) -> None:
    """A customer signing in again and again, on an account of its own (the lockout caps one
    account's parallel attempts): password hashing, CPU work on the auth replicas. It
    registers until answered: 64 registrations at once on one auth replica get some 504s,
    and a customer that gave up would leave the load short (the same answer, 202, for an
    address registered already makes a retry safe)."""
    email = unique_email("load")
    while not stop.is_set():
        registered = await _call(record, "register", client.post(
            "/auth/register", json={"email": email, "password": PASSWORD, "name": "Load"}))
        if registered is not None and registered.status_code == 202:
            break
        await asyncio.sleep(1)
    while not stop.is_set():
        await _call(record, "login", client.post("/auth/login", json={"email": email, "password": PASSWORD}))


async def stats_reads(client: httpx.AsyncClient, record: Record, stop: asyncio.Event) -> None:
    """Statistics of a different range each time: the replica computes them (pandas) instead of
    answering from its Redis cache, which a repeated range hits at almost no cost."""
    today = datetime.now(timezone.utc).date()
    while not stop.is_set():
        first = today - timedelta(days=random.randint(1, 400))
        last = first + timedelta(days=random.randint(0, 400))
        params = {"from": first.isoformat(), "to": last.isoformat(), "top": random.randint(1, 100),
                  "granularity": random.choice(("day", "week", "month"))}
        await _call(record, "/analytics/stats", client.get("/analytics/stats", params=params))


class Load:
    """`workers` concurrent loops of `flow` against `url` with `token`, until stopped."""

    def __init__(self, url: str, token: str, workers: int, flow=order_flow, *args):
        self.url, self.token, self.workers, self.flow, self.args = url, token, workers, flow, args
        self.record = Record()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> "Load":
        limits = httpx.Limits(max_connections=self.workers, max_keepalive_connections=self.workers)
        self._client = httpx.AsyncClient(base_url=self.url, timeout=CLIENT_TIMEOUT_S, limits=limits,
                                         headers={"Authorization": f"Bearer {self.token}"})
        self._tasks = [asyncio.create_task(self.flow(self._client, self.record, self._stop, *self.args))
                       for _ in range(self.workers)]
        return self

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()


async def wait_until(condition, what: str, timeout_s: float, every_s: float = 1.0):
    """Poll `condition` (a plain function) until it returns something true; AssertionError
    naming `what` after timeout_s. A dashboard too busy to answer (the load starves the
    cores) is asked again at the next poll."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = await asyncio.to_thread(condition)
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout_s:.0f}s (last: {last!r})")


class Timeline:
    """Samples, every `every_s`, what Serve wants (target replicas) and runs (RUNNING
    replicas) per application and how many Ray nodes are alive, under the current load step."""

    def __init__(self, dashboard, every_s: float = 2.0):
        self.dashboard, self.every_s = dashboard, every_s
        self.step = "idle"
        self.samples: list[dict] = []
        self._started = time.monotonic()
        self._task: asyncio.Task | None = None

    def sample(self) -> dict:
        placement = self.dashboard.placement()
        return {
            "t_s": round(time.monotonic() - self._started, 1),
            "step": self.step,
            "nodes": len(self.dashboard.alive_nodes()),
            "targets": self.dashboard.targets(),
            "running": {app: sum(per_node.values()) for app, per_node in placement.items()},
            "placement": placement,  # which node runs them: whether a node can go
        }

    async def _run(self) -> None:
        while True:
            try:
                self.samples.append(await asyncio.to_thread(self.sample))
            except httpx.HTTPError:
                pass  # the dashboard busy: the next sample
            await asyncio.sleep(self.every_s)

    async def __aenter__(self) -> "Timeline":
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def peak(self, app: str, step: str) -> int:
        return max((s["targets"].get(app, 0) for s in self.samples if s["step"] == step), default=0)

    def peak_nodes(self, step: str) -> int:
        return max((s["nodes"] for s in self.samples if s["step"] == step), default=0)
