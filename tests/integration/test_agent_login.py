"""The desktop agent's login against the real auth app (served in-process on PostgreSQL and
Redis): `orderflow-agent login` keeps only a refresh token, which is enough to run on; a
lockout is waited out, not taken for a lost login that would stop the agent."""

import asyncio
import json
import os
import stat
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from actors.auth.keys import generate_key_file
from actors.common.db import drop_database, ensure_database
from agent.api import Credentials, LoginRequired, ServerError
from agent.state import AgentState
from deployments.auth import api as auth_api
from deployments.stack import free_port
from tests.integration.support import AppServer
from tests.support import remove_redis_keys, wait_until

ADMIN = {"email": "agent-admin@example.com", "password": "a long enough password"}


@pytest.fixture
async def auth_server(tmp_path, monkeypatch):
    suffix = uuid.uuid4().hex[:8]
    database_url = f"postgresql://postgres@127.0.0.1:5432/auth_agent_{suffix}"
    generate_key_file(tmp_path / "key.pem")
    for name, value in {"AUTH_DATABASE_URL": database_url, "AUTH_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
                        "AUTH_BCRYPT_ROUNDS": "4", "AUTH_LOCKOUT_ATTEMPTS": "3", "AUTH_LOCKOUT_DELAY_S": "2",
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
        await remove_redis_keys("redis://127.0.0.1:6379/0", f"orderflow_agent_{suffix}")
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


async def agent_command(server_url: str | None, config_home: Path, command: str, stdin: str = "") -> tuple[int, str]:
    """`orderflow-agent <command> [--server <url>]` as a user runs it (typing at its prompts:
    `stdin`)."""
    agent = Path(sys.executable).with_name("orderflow-agent")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_AGENT_")}
    env |= {"XDG_CONFIG_HOME": str(config_home), "XDG_STATE_HOME": str(config_home / "state")}
    process = await asyncio.create_subprocess_exec(
        str(agent), command, *(["--server", server_url] if server_url else []), env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return process.returncode, stderr.decode()


async def login_command(server_url: str, config_home: Path, stdin: str) -> tuple[int, str]:
    return await agent_command(server_url, config_home, "login", stdin)


async def test_login_keeps_only_a_refresh_token_and_the_agent_runs_on_it(auth_server, tmp_path):
    # getpass reads the password from stdin when there is no terminal.
    code, said = await login_command(auth_server.url, tmp_path, f"{ADMIN['email']}\n{ADMIN['password']}\n")
    assert code == 0, said
    directory = tmp_path / "orderflow"
    token_file = directory / "session"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(token_file.read_text())["server"] == auth_server.url
    assert not any(ADMIN["password"] in f.read_text() for f in directory.iterdir() if f.is_file())
    first = token_file.read_text()

    async with httpx.AsyncClient(base_url=auth_server.url, timeout=10) as http:
        credentials = Credentials(http, AgentState(directory))  # no password: what the unit runs with
        bearer = {"Authorization": f"Bearer {await credentials.access_token()}"}
        me = await http.get("/auth/me", headers=bearer)
        assert me.status_code == 200 and me.json()["email"] == ADMIN["email"]
        assert token_file.read_text() != first, "the rotated refresh token is saved at once"

        assert (await http.post("/auth/logout", headers=bearer)).status_code == 204
        with pytest.raises(LoginRequired, match="orderflow-agent login"):
            await credentials.access_token(renew=True)
    assert not token_file.exists()


async def test_a_refused_login_command_says_so_and_saves_nothing(auth_server, tmp_path):
    code, said = await login_command(auth_server.url, tmp_path, f"{ADMIN['email']}\nnot the password at all\n")
    assert code == 1 and "login failed" in said
    assert not (tmp_path / "orderflow" / "session").exists()


async def test_logout_ends_the_saved_session_on_the_server_and_deletes_it(auth_server, tmp_path):
    code, said = await login_command(auth_server.url, tmp_path, f"{ADMIN['email']}\n{ADMIN['password']}\n")
    assert code == 0, said
    token_file = tmp_path / "orderflow" / "session"

    code, said = await agent_command(None, tmp_path, "logout")  # the server login was given is kept
    assert code == 0 and "logged out" in said, said
    assert not token_file.exists()
    auth_db = await asyncpg.connect(os.environ["AUTH_DATABASE_URL"])
    try:
        assert [r["revoked_reason"] for r in await auth_db.fetch("SELECT revoked_reason FROM sessions")] == ["logout"]
    finally:
        await auth_db.close()

    code, said = await agent_command(auth_server.url, tmp_path, "logout")
    assert code == 0 and "no saved session" in said


async def test_logout_without_the_server_still_deletes_the_token_and_says_so(auth_server, tmp_path):
    code, said = await login_command(auth_server.url, tmp_path, f"{ADMIN['email']}\n{ADMIN['password']}\n")
    assert code == 0, said
    await auth_server.stop()  # the gateway stops answering
    code, said = await agent_command(None, tmp_path, "logout")
    assert code == 1 and "could not end the session on the server" in said
    assert not (tmp_path / "orderflow" / "session").exists()


async def test_a_saved_session_is_never_sent_to_another_gateway(auth_server, tmp_path):
    """A typo in --server, a stale ORDERFLOW_AGENT_SERVER, or an agent still running for the
    previous gateway must not hand the refresh token to another host, nor delete it."""
    code, said = await login_command(auth_server.url, tmp_path, f"{ADMIN['email']}\n{ADMIN['password']}\n")
    assert code == 0, said
    session_file = tmp_path / "orderflow" / "session"
    saved = session_file.read_text()
    elsewhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: a request would fail to connect

    async with httpx.AsyncClient(base_url=elsewhere, timeout=10) as http:
        with pytest.raises(LoginRequired, match=f"for {auth_server.url}, not {elsewhere}"):
            await Credentials(http, AgentState(tmp_path / "orderflow")).access_token()
    code, said = await agent_command(elsewhere, tmp_path, "logout")
    assert code == 2 and f"login --server {elsewhere}" in said
    assert session_file.read_text() == saved

    code, said = await agent_command(None, tmp_path, "logout")  # the right gateway still takes it
    assert code == 0 and "logged out" in said
