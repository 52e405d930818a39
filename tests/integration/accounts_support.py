"""The auth and orders apps served in-process, on a database, Redis namespace and SMTP mail
sink of the test's own: a customer's whole path (register, the mail, verify, sign in, see
orders) over HTTP and real SMTP. The auth app reaches the orders service through the
OrdersService object instead of a Serve handle (there is no Ray here)."""

import contextlib
import re
import uuid
from dataclasses import dataclass
from email.message import EmailMessage

import httpx
import pytest

from actors.auth.keys import generate_key_file
from actors.auth.service import AuthService
from actors.common.db import drop_database, ensure_database
from actors.orders.service import OrdersService
from deployments.auth import api as auth_api
from deployments.mail_sink import MailSink
from deployments.orders import api as orders_api
from deployments.stack import free_port
from tests.factories import PASSWORD
from tests.integration.conftest import REDIS_URL
from tests.integration.support import AppServer
from tests.support import remove_redis_keys, wait_until

PUBLIC_URL = "https://shop.example.com"


@dataclass
class Accounts:
    http: httpx.AsyncClient  # the auth and orders apps at their gateway prefixes
    sink: MailSink
    orders: OrdersService
    redis_namespace: str

    @property
    def auth(self) -> AuthService:
        return auth_api.state.auth

    async def mail_to(self, address: str, count: int = 1) -> list[EmailMessage]:
        await wait_until(lambda: len(self.sink.to(address)) >= count, timeout_s=15, what=f"mail to {address}")
        return self.sink.to(address)

    async def link_token(self, address: str, count: int = 1) -> str:
        """The token of the link in the `count`-th mail to `address`."""
        body = (await self.mail_to(address, count))[count - 1].get_content()
        found = re.search(r"\?token=([A-Za-z0-9_-]+)", body)
        assert found, f"no link in the mail:\n{body}"
        return found.group(1)

    async def register(self, address: str, name: str = "Someone", password: str = PASSWORD) -> httpx.Response:
        return await self.http.post("/auth/register", json={"email": address, "password": password, "name": name})

    async def login(self, address: str, password: str = PASSWORD) -> dict:
        response = await self.http.post("/auth/login", json={"email": address, "password": password})
        assert response.status_code == 200, response.text
        return response.json()

    async def verified_account(self, address: str) -> dict:
        """Register, follow the mailed link, sign in: the token pair."""
        assert (await self.register(address)).status_code == 202
        verified = await self.http.post("/auth/verify-email", json={"token": await self.link_token(address)})
        assert verified.status_code == 200, verified.text
        return await self.login(address)


def bearer(pair: dict) -> dict:
    return {"Authorization": f"Bearer {pair['access_token']}"}


class _ByPrefix(httpx.AsyncBaseTransport):
    """One client for both apps, as through the gateway: the path prefix picks the port."""

    def __init__(self, ports: dict[str, int]):
        self.ports = ports
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        port = next(p for prefix, p in self.ports.items() if request.url.path.startswith(prefix))
        request.url = request.url.copy_with(port=port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@contextlib.asynccontextmanager
async def accounts(tmp_path, monkeypatch, orders_database_url: str, pool, **settings: str):
    """`settings`: extra environment for the apps (e.g. AUTH_EMAIL_VERIFICATION_TTL_S)."""
    suffix = uuid.uuid4().hex[:8]
    auth_database_url = f"postgresql://postgres@127.0.0.1:5432/auth_accounts_{suffix}"
    namespace = f"orderflow_accounts_{suffix}"
    generate_key_file(tmp_path / "key.pem")
    sink = MailSink(port=free_port()).start()
    auth_server = AppServer(auth_api, "/auth")
    for name, value in {
        "AUTH_DATABASE_URL": auth_database_url, "AUTH_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
        "AUTH_BCRYPT_ROUNDS": "4", "REDIS_NAMESPACE": namespace, "PUBLIC_URL": PUBLIC_URL,
        "AUTH_SMTP_HOST": sink.host, "AUTH_SMTP_PORT": str(sink.port),
        "AUTH_MAIL_POLL_S": "0.2", "AUTH_MAIL_RETRY_MAX_S": "0.5",
        "ORDERS_DATABASE_URL": orders_database_url, "ORDERS_RUN_RELAY": "false",
        "AUTH_URL": f"{auth_server.url}/auth",
        **settings,
    }.items():
        monkeypatch.setenv(name, value)
    await ensure_database(auth_database_url)
    orders = OrdersService(pool, timeout_s=5)
    servers = []
    try:
        servers.append(await auth_server.start())
        auth_api.state.auth.find_order = orders.find_for_customer
        auth_api.state.auth.claim_order_for = orders.claim_for_account
        servers.append(await AppServer(orders_api, "/orders").start())

        transport = _ByPrefix({"/orders": servers[1].port, "/auth": auth_server.port})
        async with httpx.AsyncClient(base_url="http://127.0.0.1", timeout=10, transport=transport) as http:
            yield Accounts(http, sink, orders, namespace)
    finally:
        for server in reversed(servers):
            await server.stop()
        sink.stop()
        await remove_redis_keys(REDIS_URL, namespace)
        await drop_database(auth_database_url)


@pytest.fixture
async def world(tmp_path, monkeypatch, database_url, service, pool):
    """`accounts` with its default settings, on the session's orders database (emptied)."""
    async with accounts(tmp_path, monkeypatch, database_url, pool) as world:
        yield world
