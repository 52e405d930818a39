"""The operations commands of `orderflow` (deployments/cli.py wires them):

    orderflow status            applications and replicas per node, readiness of each service
                                and server, outbox backlog, dead-letter queue depth
    orderflow logs [service]    follow the stack's logs as readable lines (not JSON)
    orderflow users ...         list, create staff, set roles, send a password-reset link
                                (the auth service's own use cases, on its database)
    orderflow report [period]   make an analytics report now (POST /analytics/reports as admin)
"""

import argparse
import asyncio
import getpass
import json
import os
import sys
import threading
import time
from collections import Counter
from datetime import datetime

import aio_pika
import asyncpg
import httpx

from deployments import preflight as pf
from deployments import stack as st
from deployments.logship import FileTail, stack_log_files

SERVICES = ("orders", "auth", "notifications", "analytics")
DASHBOARD_FILE = "dashboard.json"


def record_dashboard(stack: st.StackSettings, dashboard: str) -> None:
    """Where `orderflow status` finds the running stack's Ray dashboard."""
    (stack.run_dir / DASHBOARD_FILE).write_text(json.dumps({"dashboard": dashboard}))


def _dashboard(stack: st.StackSettings) -> tuple[str, dict[str, str]] | None:
    for name in (DASHBOARD_FILE, "cluster.json"):  # `orderflow run`'s, `orderflow cluster`'s
        path = stack.run_dir / name
        if path.exists():
            token_file = stack.run_dir / "ray-auth-token"
            token = os.environ.get("RAY_AUTH_TOKEN") or (token_file.read_text() if token_file.exists() else "")
            return json.loads(path.read_text())["dashboard"], ({"Authorization": f"Bearer {token.strip()}"}
                                                                if token.strip() else {})
    return None


# --- orderflow status ----------------------------------------------------------------------

def replicas_per_node(serve_details: dict) -> dict[str, dict]:
    """Application -> {status, replicas: {node ip: running replicas}} from Serve's status API."""
    result = {}
    for name, app in serve_details.get("applications", {}).items():
        nodes = Counter(replica.get("node_ip") or "?" for deployment in app.get("deployments", {}).values()
                        for replica in deployment.get("replicas", []) if replica.get("state") == "RUNNING")
        result[name] = {"status": app.get("status", "?"), "replicas": dict(nodes)}
    return result


async def outbox_backlog(database_url: str) -> tuple[int, float | None]:
    """Unpublished outbox rows and the age in seconds of the oldest."""
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        row = await conn.fetchrow("SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age "
                                  "FROM outbox WHERE published_at IS NULL")
    finally:
        await conn.close()
    return row["n"], (float(row["age"]) if row["age"] is not None else None)


async def dead_letter_depth(amqp_url: str, queue: str) -> int:
    from actors.notification.consumer import dead_letter_queue_name

    connection = await aio_pika.connect(amqp_url, timeout=5)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(dead_letter_queue_name(queue), passive=True)
        return declared.declaration_result.message_count


def status_lines(stack: st.StackSettings) -> tuple[list[str], bool]:
    """The status report and whether everything is well."""
    from actors.notification.settings import NotificationSettings
    from actors.orders.settings import OrdersSettings

    lines, healthy = [], True
    dashboard = _dashboard(stack)
    lines.append("Applications (running replicas per node):")
    if dashboard is None:
        lines.append("  no stack runs from this directory (`make run` starts one)")
        healthy = False
    else:
        url, headers = dashboard
        try:
            details = httpx.get(f"{url}/api/serve/applications/", headers=headers, timeout=10).json()
            for name, app in replicas_per_node(details).items():
                spread = ", ".join(f"{node}: {n}" for node, n in sorted(app["replicas"].items())) or "none"
                lines.append(f"  {name:<13} {app['status']:<10} {sum(app['replicas'].values())} replicas ({spread})")
                healthy &= app["status"] == "RUNNING"
        except (httpx.HTTPError, ValueError) as exc:
            lines.append(f"  Ray's dashboard at {url} does not answer ({exc.__class__.__name__})")
            healthy = False

    lines.append("Services (readiness through the gateway):")
    for service in SERVICES:
        try:
            answer = httpx.get(f"{stack.gateway_url}/{service}/ready", timeout=5)
            body = answer.json()
            state = body.get("status") or body.get("detail") or answer.status_code
            failing = [n for n, c in body.get("checks", {}).items() if c.get("status") != "ok"]
            lines.append(f"  {service:<13} {state}" + (f" ({', '.join(failing)})" if failing else ""))
            healthy &= answer.status_code == 200
        except (httpx.HTTPError, ValueError) as exc:
            lines.append(f"  {service:<13} no answer ({exc.__class__.__name__})")
            healthy = False

    lines.append("Servers:")
    settings = pf.load_settings()
    servers = pf.servers(settings)
    failing = dict(asyncio.run(pf.unanswered(servers)))
    for server in servers:
        state = f"does not answer ({failing[server]})" if server in failing else "answers"
        lines.append(f"  {server.name:<13} {server.shown_url}: {state}")
    healthy &= not failing

    orders, notifications = OrdersSettings(), NotificationSettings()
    lines.append("Events:")
    try:
        backlog, age = asyncio.run(outbox_backlog(orders.database_url))
        lines.append(f"  outbox backlog {backlog}" + (f" (oldest {age:.0f} s)" if age is not None else ""))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        lines.append(f"  outbox backlog unknown ({exc.__class__.__name__})")
        healthy = False
    try:
        depth = asyncio.run(dead_letter_depth(notifications.amqp_url, notifications.queue))
        lines.append(f"  dead-letter queue {depth}")
        healthy &= depth == 0
    except Exception as exc:  # no broker, or no queue yet (no consumer ever ran)
        lines.append(f"  dead-letter queue unknown ({exc.__class__.__name__})")
        healthy = False
    return lines, healthy


def cmd_status(_: argparse.Namespace) -> int:
    lines, healthy = status_lines(st.StackSettings())
    print("\n".join(lines), flush=True)
    return 0 if healthy else 1


# --- orderflow logs ------------------------------------------------------------------------

def readable(line: str) -> tuple[str | None, str]:
    """(service, a line for people) from a JSON log line of a service or the gateway."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None, line
    if not isinstance(entry, dict) or "service" not in entry:
        return None, line
    service = entry["service"]
    when = str(entry.get("ts", ""))[11:19]
    if service == "gateway":
        text = (f"{when} gateway {entry.get('method')} {entry.get('uri')} -> {entry.get('status')} "
                f"in {entry.get('duration_s')} s")
    else:
        replica = str(entry.get("replica") or "").rsplit("#", 1)[-1]
        text = f"{when} {entry.get('level', ''):<7} {service}{'[' + replica + ']' if replica else ''} {entry.get('message')}"
        if entry.get("exception"):
            text += "\n" + entry["exception"]
    context = [f"{k}={entry[k]}" for k in ("order_id", "request_id", "trace_id") if entry.get(k)]
    return service, text + (f"  ({', '.join(context)})" if context else "")


def follow(stack: st.StackSettings, service: str | None, *, once: bool, out=sys.stdout) -> int:
    """Print the stack's JSON log lines readably (only `service`'s when given), then go on with
    the new ones until Ctrl-C (or stop at the end with `once`)."""
    tail = FileTail(lambda: stack_log_files(stack))
    shown = 0
    while True:
        for raw in tail.new_lines():
            line_service, text = readable(raw)
            if line_service is not None and (service is None or line_service == service):
                print(text, file=out, flush=True)
                shown += 1
        if once:
            return shown
        time.sleep(0.5)


def is_error(line: str) -> bool:
    """A replica's JSON line at ERROR or worse, or what Python writes when a process fails."""
    if line.startswith("{"):
        try:
            return json.loads(line).get("level") in ("ERROR", "CRITICAL")
        except (json.JSONDecodeError, AttributeError):
            return False
    return line.startswith("Traceback") or " ERROR " in line or line.startswith("ERROR")


def show_errors(stack: st.StackSettings, stopping: threading.Event, out=sys.stdout) -> threading.Thread:
    """While `orderflow run` runs with a quiet console (the replicas' output only in their
    files): every error written from now on, readably, on the console."""
    tail = FileTail(lambda: stack_log_files(stack)[1:], from_end=True)  # not the access log

    def watch() -> None:
        while not stopping.wait(1):
            for raw in tail.new_lines():
                if is_error(raw):
                    print(readable(raw)[1], file=out, flush=True)

    thread = threading.Thread(target=watch, name="console-errors", daemon=True)
    thread.start()
    return thread


def cmd_logs(args: argparse.Namespace) -> int:
    try:
        follow(st.StackSettings(), args.service, once=args.no_follow)
    except KeyboardInterrupt:
        pass
    return 0


# --- orderflow users -----------------------------------------------------------------------

async def _auth_service():
    """The auth service's use cases on its database, as a replica has them."""
    from actors.auth.service import AuthService
    from actors.auth.settings import AuthSettings
    from actors.common.db import create_pool
    from actors.common.redis import create_redis

    settings = AuthSettings()
    pool = await create_pool(settings.database_url, max_size=2, timeout_s=settings.dependency_timeout_s)

    async def no_orders(*_):  # order claims are not among these commands
        raise RuntimeError("not available from the command line")

    return AuthService(pool, create_redis(settings.redis_url), None, settings, no_orders, no_orders), pool


def _new_password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("password for the new account: ")
    return sys.stdin.readline().rstrip("\n")


async def _users(args: argparse.Namespace) -> int:
    from actors.auth.domain import Registration

    service, pool = await _auth_service()
    try:
        if args.action == "list":
            for user in await service.users():
                print(f"{user.email:<40} {','.join(user.roles):<22} {user.name}")
            return 0
        by_email = {u.email: u for u in await service.users()}
        if args.action == "create":
            if args.email not in by_email:
                await service.register(Registration(email=args.email, password=_new_password(), name=args.name))
                by_email = {u.email: u for u in await service.users()}
            user = by_email[args.email]
            roles = await service.set_roles(user.id, sorted(set(user.roles) | {args.role}))
            print(f"orderflow: {args.email} has roles {', '.join(roles)} (a verification mail was sent).")
            return 0
        user = by_email.get(args.email)
        if user is None:
            print(f"orderflow: no account has the address {args.email}.")
            return 1
        if args.action == "roles":
            roles = await service.set_roles(user.id, args.roles)
            print(f"orderflow: {args.email} has roles {', '.join(roles)}.")
        else:  # reset-password
            await service.request_password_reset(args.email)
            await service.finish_background()
            print(f"orderflow: a password-reset link was mailed to {args.email}.")
        return 0
    finally:
        await pool.close()


def cmd_users(args: argparse.Namespace) -> int:
    return asyncio.run(_users(args))


# --- orderflow report ----------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    """Log in as an admin through the gateway and ask analytics for a report now."""
    from actors.auth.settings import AuthSettings

    stack = st.StackSettings()
    auth = AuthSettings()
    email = args.email or os.environ.get("AUTH_BOOTSTRAP_ADMIN_EMAIL") or auth.bootstrap_admin_email
    password = os.environ.get("ORDERFLOW_ADMIN_PASSWORD") or os.environ.get("AUTH_BOOTSTRAP_ADMIN_PASSWORD") \
        or auth.bootstrap_admin_password or st.DEV_ADMIN_PASSWORD
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
        login = client.post("/auth/login", json={"email": email or st.DEV_ADMIN_EMAIL, "password": password})
        if login.status_code != 200:
            print(f"orderflow: could not log in as {email}: {login.status_code} {login.text}")
            return 1
        made = client.post("/analytics/reports", json={"period": args.period},
                           headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    if made.status_code != 201:
        print(f"orderflow: no report: {made.status_code} {made.text}")
        return 1
    report = made.json()
    print(f"orderflow: report {report.get('name')} made ({report.get('size')} bytes, {datetime.now():%H:%M:%S}).")
    return 0


def add_commands(commands) -> None:
    commands.add_parser("status", help="applications, replicas, readiness, servers, outbox and DLQ").set_defaults(
        func=cmd_status)
    logs = commands.add_parser("logs", help="follow the stack's logs, readably")
    logs.add_argument("service", nargs="?", help="only this service's lines (gateway, orders, auth, notification, "
                                                 "analytics)")
    logs.add_argument("--no-follow", action="store_true", help="print what is there and exit")
    logs.set_defaults(func=cmd_logs)
    users = commands.add_parser("users", help="list users, create staff, set roles, send a password-reset link")
    actions = users.add_subparsers(dest="action", required=True)
    actions.add_parser("list")
    create = actions.add_parser("create", help="a staff account (password from the prompt or stdin)")
    create.add_argument("email")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=("warehouse", "admin"), default="warehouse")
    roles = actions.add_parser("roles", help="set a user's roles")
    roles.add_argument("email")
    roles.add_argument("roles", nargs="+", choices=("admin", "warehouse", "customer"))
    reset = actions.add_parser("reset-password", help="mail the user a password-reset link")
    reset.add_argument("email")
    users.set_defaults(func=cmd_users)
    report = commands.add_parser("report", help="make an analytics report now")
    report.add_argument("period", nargs="?", default="day", choices=("hour", "day", "week", "month"))
    report.add_argument("--email", help="an admin's address (default: the bootstrap admin's)")
    report.set_defaults(func=cmd_report)
