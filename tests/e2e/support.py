"""Helpers of the end-to-end tests: accounts and orders through the gateway, the mails the
stack's mail sink keeps as files, raw HTTP requests, the local addresses a port listens on, and
the metrics Ray's metrics agents export, a message no consumer can read, and a notifications
log that refuses one customer's notifications for a while."""

import contextlib
import email
import email.policy
import json
import re
import socket
import uuid
from pathlib import Path

import aio_pika
import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from actors.common.events import ORDER_CREATED
from tests.factories import PASSWORD, unique_email
from tests.support import wait_for


def login(url: str, **credentials) -> dict:
    response = httpx.post(f"{url}/auth/login", json=credentials, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def mail_match(stack, address: str, pattern: str) -> re.Match | None:
    """`pattern` found in the newest mail to `address` that has it, in the stack's mail sink."""
    for path in sorted((stack.settings.run_dir / "mail").glob("*.eml"), reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address and (found := re.search(pattern, message.get_content())):
            return found
    return None


def mailed_token(stack, address: str) -> str:
    """The link's token in the newest mail to `address`, once it has come."""
    found = wait_for(lambda: mail_match(stack, address, r"\?token=([\w-]+)"), f"a mail with a link to {address}",
                     timeout_s=30)
    return found.group(1)


def register(stack, name: str, *, verify: bool = True) -> str:
    """A new customer account (its address proved through the mailed link): its email."""
    address = unique_email(name)
    response = httpx.post(f"{stack.url}/auth/register", json={"email": address, "password": PASSWORD, "name": name})
    assert response.status_code == 202, response.text
    if verify:
        verified = httpx.post(f"{stack.url}/auth/verify-email", json={"token": mailed_token(stack, address)})
        assert verified.status_code == 200, verified.text
    return address


def place_order(client, email: str = "desk@example.com") -> dict:
    """An order of two lines in PLN for `email`, placed through the gateway: the created order."""
    response = client.post("/orders", json={
        "customer": {"email": email, "name": "Desk Test"}, "currency": "PLN",
        "items": [{"sku": "MUG-01", "name": "Mug", "quantity": 2, "unit_price": "39.90"},
                  {"sku": "CAP-01", "name": "Cap", "quantity": 1, "unit_price": "49.50"}]})
    assert response.status_code == 201, response.text
    return response.json()


def user_id(admin: httpx.Client, address: str) -> str:
    return next(u["id"] for u in admin.get("/auth/users").json() if u["email"] == address)


def listening_addresses(port: int) -> set[str]:
    """The local addresses (as /proc/net/tcp{,6} write them) with a listener on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def raw_request(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as it is to host:port of `url`; status, headers (lower-cased) and body."""
    address = httpx.URL(url)
    with socket.create_connection((address.host, address.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def raw_get(path: str, *headers: bytes) -> bytes:
    """A GET of `path` with `headers` (each a whole header line) as bytes, to send as it is."""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: orderflow\r\n" + b"".join(
        h + b"\r\n" for h in headers) + b"Connection: close\r\n\r\n"


def ray_metrics(stack) -> list[Sample]:
    """Every sample Ray's metrics agents export now, found as Prometheus finds them: through
    Ray's service-discovery file."""
    samples = []
    for group in json.loads(stack.settings.prometheus_targets_file.read_text()):
        for target in group["targets"]:
            try:
                text = httpx.get(f"http://{target}/metrics", timeout=10).text
            except httpx.TransportError:
                continue  # an agent starting or going; the caller waits for what it needs
            for family in text_string_to_metric_families(text):
                samples.extend(family.samples)
    return samples


def wait_for_metric(stack, name: str, timeout_s: float = 60, **labels: str) -> list[Sample]:
    """The samples called `name` with `labels` among them, once Ray exports at least one
    (a replica reports every few seconds)."""
    return wait_for(
        lambda: [s for s in ray_metrics(stack) if s.name == name and labels.items() <= s.labels.items()],
        f"{name}{labels or ''} in Ray's metrics", timeout_s,
    )


async def publish_broken_event(stack) -> None:
    """One message on the stack's orders exchange that is no order event: the notification
    consumer moves it to the dead-letter queue (dead-lettered, DLQ depth 1)."""
    connection = await aio_pika.connect(stack.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(stack.exchange)
        await exchange.publish(aio_pika.Message(b"not an order event", message_id=uuid.uuid4().hex),
                               routing_key=ORDER_CREATED)


@contextlib.asynccontextmanager
async def notifications_refused(stack, customer_email: str):
    """While inside, the stack's notifications database refuses every notification that names
    `customer_email` (a CHECK constraint, NOT VALID so that old rows are not checked): the
    consumer's insert fails as a real database failure does, and the event is retried. The
    constraint is dropped on the way out."""
    name = f"e2e_refused_{uuid.uuid4().hex[:8]}"
    literal = customer_email.replace("'", "''")
    connection = await asyncpg.connect(stack.notifications_database_url)
    try:
        await connection.execute(f"ALTER TABLE notifications ADD CONSTRAINT {name} "
                                 f"CHECK (position('{literal}' in message) = 0) NOT VALID")
        try:
            yield
        finally:
            await connection.execute(f"ALTER TABLE notifications DROP CONSTRAINT {name}")
    finally:
        await connection.close()
