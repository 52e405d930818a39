"""The desktop agent's login against the real auth app (served in-process on PostgreSQL and
Redis): a lockout is waited out, not taken for a lost login that would stop the agent."""

import uuid

import httpx
import pytest

from actors.auth.keys import generate_key_file
from actors.common.db import drop_database, ensure_database
from actors.common.redis import create_redis
from agent.api import Credentials, LoginRequired, ServerError
from agent.state import AgentState
from deployments.auth import api as auth_api
from tests.integration.support import AppServer, wait_until

ADMIN = {"email": "agent-admin@example.com", "password": "a long enough password"}


@pytest.fixture
async def auth_server(tmp_path, monkeypatch):
    suffix = uuid.uuid4().hex[:8]
    database_url = f"postgresql://postgres@127.0.0.1:5432/auth_agent_{suffix}"
    generate_key_file(tmp_path / "key.pem")
    for name, value in {"AUTH_DATABASE_URL": database_url, "AUTH_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
                        "AUTH_BCRYPT_ROUNDS": "4", "AUTH_LOCKOUT_ATTEMPTS": "3", "AUTH_LOCKOUT_WINDOW_S": "2",
                        "AUTH_BOOTSTRAP_ADMIN_EMAIL": ADMIN["email"],
                        "AUTH_BOOTSTRAP_ADMIN_PASSWORD": ADMIN["password"],
                        "REDIS_NAMESPACE": f"orderflow_agent_{suffix}"}.items():
        monkeypatch.setenv(name, value)
    await ensure_database(database_url)
    server = await AppServer(auth_api, "/auth").start()  # its lifespan reads the settings above
    try:
        yield server
    finally:
        await server.stop()
        redis = create_redis("redis://127.0.0.1:6379/0")
        async for key in redis.scan_iter(match=f"orderflow_agent_{suffix}:*"):
            await redis.delete(key)
        await redis.aclose()
        await drop_database(database_url)


async def test_a_locked_out_agent_waits_for_the_lockout_to_end(auth_server, tmp_path):
    async with httpx.AsyncClient(base_url=auth_server.url, timeout=10) as http:
        for _ in range(3):  # somebody mistypes the shared account's password
            bad = await http.post("/auth/login", json={**ADMIN, "password": "not the password at all"})
            assert bad.status_code == 401
        assert (await http.post("/auth/login", json=ADMIN)).status_code == 429

        credentials = Credentials(http, AgentState(tmp_path / "agent"), **ADMIN)
        with pytest.raises(ServerError, match="Retry-After"):  # retried by the agent, not the end of it
            await credentials.login()

        async def logged_in() -> bool:
            try:
                await credentials.login()
                return True
            except ServerError:
                return False

        await wait_until(logged_in, timeout_s=15, what="the login once the lockout ends")
        assert await credentials.access_token()


async def test_a_wrong_password_is_a_lost_login(auth_server, tmp_path):
    async with httpx.AsyncClient(base_url=auth_server.url, timeout=10) as http:
        credentials = Credentials(http, AgentState(tmp_path / "agent"), email=ADMIN["email"],
                                  password="not the password at all")
        with pytest.raises(LoginRequired):
            await credentials.login()
