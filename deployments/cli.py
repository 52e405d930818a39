"""`orderflow`: run, stop and look after the local stack.

    orderflow run        check everything first (starting the local servers that are stopped),
                         migrate, start Ray Serve + nginx, seed, wait
    orderflow stop       stop a running `orderflow run` (what `make stop` calls)
    orderflow check      check the settings, nginx, free ports, PostgreSQL, Redis and RabbitMQ
    orderflow migrate    create the databases if missing and apply migrations
    orderflow seed       place the demo orders (idempotent)
    orderflow cluster    the same on a Ray cluster of a head and two workers on this machine
    orderflow placement  where the replicas of a running `orderflow cluster` run
    orderflow status, logs, users, report   operations (deployments/ops.py)
"""

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

from actors.auth.settings import AuthSettings
from actors.orders.settings import OrdersSettings
from deployments import exporters as ex
from deployments import ops
from deployments import preflight as pf
from deployments import stack as st
from deployments.cluster import cluster_stack


SERVICES = ("orders", "auth", "notifications", "analytics")


def say(message: str) -> None:
    print(f"orderflow: {message}", flush=True)


def cmd_check(_: argparse.Namespace) -> int:
    running = _running_pid(st.StackSettings())
    if running is not None:
        say(f"a stack runs (pid {running}); its ports are in use.")
    problems = preflight(start_servers=False, check_ports=running is None)
    if not problems:
        ports = ", ports free" if running is None else ""
        say(f"settings valid, nginx installed{ports}; PostgreSQL, Redis and RabbitMQ answer.")
    return 1 if problems else 0


def preflight(*, start_servers: bool, check_ports: bool = True, cluster: bool = False) -> list[str]:
    """Everything `run` (or, with `cluster`, `orderflow cluster`) needs before it starts
    anything, each problem said on one line; with `start_servers`, local servers that are
    installed but stopped are started first. Invalid settings raise pf.BadSettings (main
    says them)."""
    settings = pf.load_settings()
    stack = cluster_stack() if cluster else settings.stack
    problems = [p for p in [pf.nginx_problem(stack)] if p]
    problems += pf.port_problems(stack, cluster=cluster) if check_ports else []
    failing = asyncio.run(pf.unanswered(pf.servers(settings)))
    if failing and start_servers and not problems and pf.start_local_servers([s for s, _ in failing]):
        failing = asyncio.run(pf.unanswered([s for s, _ in failing]))
    problems += [pf.server_problem(server, reason) for server, reason in failing]
    for problem in problems:
        say(problem)
    return problems


def cmd_migrate(_: argparse.Namespace) -> int:
    applied = asyncio.run(st.prepare_databases(OrdersSettings(), AuthSettings()))
    for database, versions in applied.items():
        say(f"{database} migrated ({', '.join(versions) or 'already up to date'}).")
    return 0


def cmd_seed(_: argparse.Namespace) -> int:
    created = asyncio.run(st.seed_demo_orders(OrdersSettings()))
    say(f"demo orders: {created} placed" if created else "demo orders were already there.")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    stack = st.StackSettings()
    if (pid := _running_pid(stack)) is not None:
        say(f"already running (pid {pid}); `make stop` stops it.")
        return 1
    if preflight(start_servers=True):
        return 1
    cmd_migrate(args)

    stack.run_dir.mkdir(parents=True, exist_ok=True)
    stack.pid_file.write_text(str(os.getpid()))
    st.mark_processes(stack)
    stopping = threading.Event()
    nginx: subprocess.Popen | None = None
    exporters: list[subprocess.Popen] = []
    mail_sink = None
    try:
        mail_sink = st.start_mail_sink(stack)
        environments = st.local_environments(stack, mail_sink)
        say(f"starting Ray Serve on {stack.serve_url} (first start takes a while) ...")
        dashboard = st.start_serve(stack, environments)
        ops.record_dashboard(stack, dashboard)
        # After ray.init, which installs a SIGTERM handler of its own that exits at once.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        nginx = open_gateway(stack, check_failed=st.failed_deployments)
        exporters = start_exporters(stack)
        if not args.no_seed:
            cmd_seed(args)
        say("ready.")
        auth = os.environ | environments["auth"]  # what the auth replicas read
        print(
            f"\n  API gateway     {stack.gateway_url}\n"
            + (f"  TLS (dev cert)  {stack.gateway_tls_url}   (certificate: {stack.run_dir}/tls/gateway-dev.crt)\n"
               if stack.gateway_tls_url else "")
            + (f"  Web clients     {stack.gateway_url}/ (customer page), {stack.gateway_url}/admin/ (admin panel)\n"
               if stack.web_built else "  Web clients     not built: run `make web` (until then / and /admin/ answer 503)\n")
            + f"  Orders API      {stack.gateway_url}/orders   (docs: {stack.gateway_url}/orders/docs)\n"
            f"  Auth API        {stack.gateway_url}/auth     (docs: {stack.gateway_url}/auth/docs)\n"
            f"  Notifications   {stack.gateway_url}/notifications (agents: orderflow-agent --server {stack.gateway_url})\n"
            f"  Analytics       {stack.gateway_url}/analytics/stats, reports in {environments['analytics']['REPORTS_DIR']}\n"
            f"  Health          {stack.gateway_url}/<service>/health, /<service>/ready\n"
            f"  Metrics         http://{stack.serve_host}:{stack.metrics_port}/metrics (Ray's metrics agent; Prometheus: monitoring/prometheus.yml)\n"
            f"  Exporters       127.0.0.1:{stack.postgres_exporter_port} PostgreSQL, :{stack.redis_exporter_port} Redis, "
            f":{stack.nginx_exporter_port} nginx, :{ex.RABBITMQ_METRICS_PORT} RabbitMQ (its own plugin)\n"
            f"  Admin login     {auth.get('AUTH_BOOTSTRAP_ADMIN_EMAIL')} / {_shown_password(auth.get('AUTH_BOOTSTRAP_ADMIN_PASSWORD'))}\n"
            + (f"  Mail (dev sink) {mail_sink.address}, every message kept in {mail_sink.folder}\n" if mail_sink else "")
            + f"  Logs            {stack.run_dir}/nginx-access.log, {stack.ray_temp_dir}/session_latest/logs\n"
            f"  Ray dashboard   {dashboard}   (what `make run` deploys through; token: README, Configuration)\n"
            "\n  Ctrl-C (or `make stop`) stops everything.\n",
            flush=True,
        )
        say("the replicas log to files (`orderflow logs` follows them); their errors are shown here.")
        ops.show_errors(stack, stopping)
        serve_until(stopping, nginx, stack)
        return 0
    except st.StackError as exc:
        say(str(exc))
        return 1
    finally:
        # Once stopping, a second Ctrl-C must not cut the clean-up short.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        ex.stop_exporters(exporters)
        if nginx is not None:
            st.stop_process(nginx)
        st.stop_serve()
        if mail_sink is not None:
            mail_sink.stop()
        stack.pid_file.unlink(missing_ok=True)
        say("stopped.")


def open_gateway(stack: st.StackSettings, check_failed) -> subprocess.Popen:
    """Once every service answers ready on Serve's port, nginx in front of them, ready too."""
    for number, service in enumerate(SERVICES, 1):
        st.wait_ready(f"{stack.serve_url}/{service}/ready", stack.ready_timeout_s, check_failed=check_failed)
        say(f"{service} ready ({number}/{len(SERVICES)})")
    nginx = st.start_nginx(stack)
    for service in SERVICES:
        st.wait_ready(f"{stack.gateway_url}/{service}/ready", 30)
    return nginx


def start_exporters(stack: st.StackSettings) -> list[subprocess.Popen]:
    """The Prometheus exporters of PostgreSQL, Redis and the gateway, against the servers the
    services use (deployments/exporters.py)."""
    settings = pf.load_settings()
    wanted = ex.exporters(stack, database_url=settings.orders.database_url, redis_url=settings.common.redis_url)
    return ex.start_exporters(stack, wanted, say, amqp_url=settings.common.amqp_url)


def serve_until(stopping: threading.Event, nginx: subprocess.Popen, stack: st.StackSettings) -> None:
    """Until Ctrl-C or `make stop` sets `stopping`; a StackError if nginx exits meanwhile."""
    while not stopping.wait(1):
        if nginx.poll() is not None:
            raise st.StackError(f"nginx exited with code {nginx.returncode}; see {stack.run_dir}/nginx-error.log")
    say("stopping ...")


def _cluster():
    from deployments import cluster  # imports this module

    return cluster


def _shown_password(password: str | None) -> str:
    if password == st.DEV_ADMIN_PASSWORD:
        return password
    return "(the password in AUTH_BOOTSTRAP_ADMIN_PASSWORD)"


def cmd_stop(_: argparse.Namespace) -> int:
    stack = st.StackSettings()
    pid = _running_pid(stack)
    if pid is None:
        say("nothing is running.")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.5)
    if _alive(pid):
        say(f"pid {pid} did not stop within 60s; killing it.")
        os.kill(pid, signal.SIGKILL)
    if leftovers := st.stack_processes(stack):
        say(f"killing processes the stack left behind: {leftovers}")
        for leftover in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
    say("stopped.")
    return 0


def _running_pid(stack: st.StackSettings) -> int | None:
    try:
        pid = int(stack.pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orderflow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole system in the foreground")
    run.add_argument("--no-seed", action="store_true", help="do not place the demo orders")
    run.set_defaults(func=cmd_run)
    cluster = commands.add_parser("cluster", help="run it on a Ray cluster of several nodes on this machine")
    cluster.add_argument("--no-seed", action="store_true", help="do not place the demo orders")
    cluster.set_defaults(func=lambda args: _cluster().run(args.no_seed))
    commands.add_parser("placement", help="replicas per node of a running `orderflow cluster`").set_defaults(
        func=lambda _: _cluster().show_placement())
    for name, func, text in [
        ("stop", cmd_stop, "stop a running `orderflow run`"),
        ("check", cmd_check, "check the settings, nginx, free ports, PostgreSQL, Redis and RabbitMQ"),
        ("migrate", cmd_migrate, "create databases if missing and apply migrations"),
        ("seed", cmd_seed, "place the demo orders (idempotent)"),
    ]:
        commands.add_parser(name, help=text).set_defaults(func=func)
    ops.add_commands(commands)
    args = parser.parse_args(argv)
    try:
        pf.load_settings()  # every command reads them: a bad one is named before anything runs
        return args.func(args)
    except pf.BadSettings as exc:
        for line in exc.lines:
            say(line)
        return 2


if __name__ == "__main__":
    sys.exit(main())
