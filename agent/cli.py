"""`orderflow-agent`: order notifications on this desktop.

    orderflow-agent                run: show notifications until stopped (what the systemd
                                   unit and the autostart entry start)
    orderflow-agent login          ask for staff email and password once and keep only a
                                   refresh token and its gateway in ~/.config/orderflow/ (0600)
    orderflow-agent logout         end the saved session on the server and delete it here
    orderflow-agent --test         show one test notification and exit

Credentials can also come from ORDERFLOW_AGENT_EMAIL / ORDERFLOW_AGENT_PASSWORD. The server
(the gateway) is --server, else ORDERFLOW_AGENT_SERVER, else the one `login` was given (kept
beside the refresh token it belongs to), else http://127.0.0.1:8088.
"""

import argparse
import asyncio
import getpass
import logging
import logging.handlers
import signal
import sys

import httpx
from pydantic import ValidationError

from actors.common.logging import JsonFormatter, configure_logging, get_logger
from agent.api import Credentials, LoginRequired, NotAllowed, NotificationsApi, ServerError
from agent.desktop import Alert, DesktopAlerts
from agent.runner import Agent
from agent.settings import AgentSettings
from agent.state import AgentState, AlreadyRunning

log = get_logger("agent")


def setup_logging(settings: AgentSettings, level: str) -> None:
    """JSON lines to stderr (the journal, under systemd) and to the agent's log file."""
    configure_logging("agent", level)
    settings.log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.handlers.RotatingFileHandler(settings.log_file, maxBytes=5_000_000, backupCount=3)
    to_file.setFormatter(JsonFormatter("agent"))
    logging.getLogger("orderflow").addHandler(to_file)


def say(message: str) -> None:
    print(f"orderflow-agent: {message}", file=sys.stderr, flush=True)


async def send_test(settings: AgentSettings) -> int:
    alerts = DesktopAlerts(settings.app_name)
    accepted = await alerts.show(Alert(
        title="Orderflow agent works",
        message=f"Order notifications from {settings.server} will look like this.",
        url=f"{settings.server.rstrip('/')}/admin/",
    ))
    if accepted is None:
        say("no desktop notification server answered on D-Bus; nothing could be shown.")
        return 1
    say("test notification sent.")
    return 0


async def login(settings: AgentSettings) -> int:
    email = settings.email or input("Staff email: ").strip()
    password = settings.password or getpass.getpass("Password: ")
    state = AgentState(settings.config_dir)
    async with httpx.AsyncClient(base_url=settings.server, timeout=settings.request_timeout_s) as http:
        try:
            await Credentials(http, state, email=email, password=password).login()
        except (LoginRequired, ServerError, httpx.HTTPError) as exc:
            say(f"login failed: {exc}")
            return 1
    say(f"logged in to {settings.server}; the session is kept in {settings.config_dir} "
        "(the password is not stored).")
    return 0


async def logout(settings: AgentSettings) -> int:
    state = AgentState(settings.config_dir)
    if state.session is None:
        say(f"no saved session in {settings.config_dir}; nothing to do.")
        return 0
    async with httpx.AsyncClient(base_url=settings.server, timeout=settings.request_timeout_s) as http:
        try:
            await Credentials(http, state).logout()  # the saved session's, never a password
        except LoginRequired as exc:
            if state.session is not None:  # the session is another gateway's: left alone
                say(str(exc))
                return 2
            say("the saved session had already ended; nothing is kept here now.")
            return 0
        except (ServerError, httpx.HTTPError) as exc:
            state.forget_session()
            say(f"could not end the session on the server ({exc}); its token is deleted here, and the "
                "session ends on the server when it expires.")
            return 1
    say("logged out: the session is ended on the server and deleted here.")
    return 0


async def run(settings: AgentSettings) -> int:
    state = AgentState(settings.config_dir)
    try:
        state.lock_for_running()
    except AlreadyRunning as exc:
        say(f"{exc}; this one exits (each notification is shown once).")
        return 0
    async with httpx.AsyncClient(base_url=settings.server, timeout=settings.request_timeout_s) as http:
        credentials = Credentials(http, state, email=settings.email, password=settings.password)
        agent = Agent(settings, credentials, DesktopAlerts(settings.app_name), state,
                      NotificationsApi(http, credentials))
        task = asyncio.create_task(agent.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        log.info("agent started for %s (log: %s)", settings.server, settings.log_file)
        try:
            await task
        except asyncio.CancelledError:
            log.info("agent stopped")
            return 0
        except (LoginRequired, NotAllowed) as exc:
            log.error("%s", exc)
            return 2
    return 0


def resolve_settings(server: str | None) -> AgentSettings:
    """Settings from the environment, with the server from the command line, else from the
    environment, else the one the saved session was made on."""
    if server:
        return AgentSettings(server=server)
    settings = AgentSettings()
    session = AgentState(settings.config_dir).session
    if "server" not in settings.model_fields_set and session:
        return AgentSettings(server=session.server)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orderflow-agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["run", "login", "logout"], default="run")
    parser.add_argument("--server", help="the Orderflow gateway, e.g. https://shop.example.com")
    parser.add_argument("--test", action="store_true", help="show one test notification and exit")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        settings = resolve_settings(args.server)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else None
            where = ("--server" if field == "server" and args.server else
                     f"ORDERFLOW_AGENT_{field.upper()}" if field else "settings")
            say(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        return 2
    setup_logging(settings, args.log_level)
    if args.test:
        return asyncio.run(send_test(settings))
    if args.command == "login":
        return asyncio.run(login(settings))
    if args.command == "logout":
        return asyncio.run(logout(settings))
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
