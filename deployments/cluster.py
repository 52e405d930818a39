"""Orderflow on a Ray cluster of several nodes on this one machine (`orderflow cluster`,
`make cluster`): a head and workers, each its own `ray start` (its own raylet, resources and
processes), Ray's autoscaler on its fake multi-node provider (it starts and stops real worker
nodes as Serve's replicas need them), the applications of serve_config.yaml deployed as
`orderflow run` deploys them, and the nginx gateway in front. tests/cluster and
bench/cluster_scaling run it to kill nodes and load it.

Every node's processes carry a tag of their own in their environment (node_settings), so one
node can be killed (a node lost) and everything stopped, without touching another Ray.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml
from pydantic_settings import BaseSettings, SettingsConfigDict

from deployments import stack as st

WORKER_NODE_TYPE = "ray.worker.autoscaled"
NODE_LABEL = "orderflow-node"  # a Ray node label: which `ray start` a node is
AUTOSCALED = "autoscaled-"  # the name prefix of the nodes Ray's autoscaler started
START_TRIES = 3


class ClusterSettings(BaseSettings):
    """The cluster's shape (prefix ORDERFLOW_CLUSTER_). CPUs are Ray's logical CPUs, which
    decide where replicas fit (serve_config.yaml: 0.25 a replica, 0.5 for analytics): the
    head runs Serve's controller and proxy only, as on a real cluster; the two workers hold
    the minimum replicas of the four applications (1.25 CPU) and 0.75 CPU more, so a load
    that wants more than that makes the autoscaler start a node."""

    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_CLUSTER_", extra="ignore")

    workers: int = 2
    head_cpus: int = 0
    worker_cpus: int = 1
    # Nodes the autoscaler may add, each of autoscaled_cpus, and how long one stays idle
    # before it is stopped again.
    max_autoscaled: int = 2
    autoscaled_cpus: int = 1
    idle_timeout_s: float = 20

    @property
    def worker_names(self) -> list[str]:
        return [f"worker-{n}" for n in range(1, self.workers + 1)]


def node_settings(stack: st.StackSettings, name: str) -> st.StackSettings:
    """The settings whose stack_id tags the processes of worker `name` (st.stack_processes
    finds them). The head's processes, and the nodes the autoscaler starts from it, carry
    the stack's own tag."""
    return stack.model_copy(update={"run_dir": stack.run_dir / "nodes" / name})


def all_settings(stack: st.StackSettings, cluster: ClusterSettings) -> list[st.StackSettings]:
    return [stack, *(node_settings(stack, name) for name in cluster.worker_names)]


def kill_node(stack: st.StackSettings, name: str) -> list[int]:
    """Lose worker `name` as a machine is lost: its raylet and every worker process, at once."""
    pids = st.stack_processes(node_settings(stack, name))
    for pid in pids:
        _kill(pid, signal.SIGKILL)
    return pids


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def cluster_stack() -> st.StackSettings:
    """The stack's settings for a cluster. Serve's default proxy, not throughput mode:
    HAProxy keeps its config and admin socket at per-process paths that nodes sharing one
    machine would share; the proxies of all nodes bind Serve's port with SO_REUSEPORT, so
    the kernel spreads the gateway's connections over the nodes alive."""
    return st.StackSettings().model_copy(update={"throughput_mode": False})


class _StartFailed(Exception):
    """One `ray start` exited with an error (its output is in its log)."""


class Cluster:
    """A head, `cluster.workers` workers and the autoscaler, started by this process."""

    def __init__(self, stack: st.StackSettings, cluster: ClusterSettings):
        self.stack, self.cluster = stack, cluster
        self.node_ip = self.gcs_address = self.dashboard = None

    def _environment(self, tag: st.StackSettings, **extra: str) -> dict[str, str]:
        return os.environ | {st.STACK_ENV: tag.stack_id} | extra

    def start(self) -> "Dashboard":
        """Start the head (with the autoscaler) and the workers; returns their dashboard."""
        st._ray_environment(self.stack)  # token authentication, as `orderflow run`
        from ray._private.services import get_node_ip_address

        self.node_ip = get_node_ip_address()
        dashboard_port = self._retried("head", self.stack, self._start_head)
        for name in self.cluster.worker_names:
            tag = node_settings(self.stack, name)
            self._retried(name, tag, lambda log: self._ray_start(
                log, tag, [f"--address={self.gcs_address}", f"--num-cpus={self.cluster.worker_cpus}"], name))
        self.dashboard = Dashboard(f"http://127.0.0.1:{dashboard_port}", st._ray_auth_headers())
        return self.dashboard

    def _start_head(self, log: Path) -> int:
        """One try at the head on fresh ports; returns its dashboard's port."""
        port, dashboard_port = st.free_port(), st.free_port()
        self.gcs_address = f"{self.node_ip}:{port}"
        autoscaling = self.stack.run_dir / "autoscaler.yaml"
        autoscaling.write_text(yaml.safe_dump(autoscaler_config(self.cluster, self.gcs_address)))
        self._ray_start(log, self.stack, [
            "--head", f"--port={port}", f"--num-cpus={self.cluster.head_cpus}",
            f"--temp-dir={self.stack.ray_temp_dir}", "--include-dashboard=true",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
            f"--ray-client-server-port={st.free_port()}", f"--autoscaling-config={autoscaling}",
        ], "head", RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1")
        return dashboard_port

    def _retried(self, name: str, tag: st.StackSettings, start):
        """`start(log)` until it succeeds, START_TRIES times at most: a node that fails to
        start (a port taken between our check and Ray's bind) leaves nothing another try
        needs, so its processes are killed and it starts again on other ports."""
        log = self.stack.run_dir / f"ray-start-{name}.log"
        for attempt in range(1, START_TRIES + 1):
            try:
                return start(log)
            except _StartFailed:
                pass
            for pid in st.stack_processes(tag):
                _kill(pid, signal.SIGKILL)
            if attempt < START_TRIES:
                print(f"orderflow: `ray start` of the {name} failed (try {attempt} of {START_TRIES}); "
                      f"trying again. Its output:\n{_tail(log)}", flush=True)
        raise st.StackError(f"`ray start` of the {name} failed {START_TRIES} times; the last "
                            f"output ({log}):\n{_tail(log)}")

    def _ray_start(self, log: Path, tag: st.StackSettings, arguments: list[str], name: str,
                   **extra: str) -> None:
        ray = Path(sys.executable).with_name("ray")
        command = [str(ray), "start", *arguments, "--disable-usage-stats", "--log-color=false",
                   f"--dashboard-agent-listen-port={st.free_port()}", f"--labels={NODE_LABEL}={name}"]
        with log.open("w") as out:
            done = subprocess.run(command, env=self._environment(tag, **extra), stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        if done.returncode != 0:
            raise _StartFailed(name)

    def deploy(self, environments: dict[str, dict[str, str]]) -> None:
        """serve_config.yaml through Serve's REST API, as `orderflow run` deploys it."""
        st.deploy_applications(self.dashboard.url, st.serve_config(self.stack, environments))

    def stop(self) -> None:
        """Every process of every node (the autoscaler's nodes carry the head's tag)."""
        everyone = all_settings(self.stack, self.cluster)
        for sig, wait_s in [(signal.SIGTERM, 10), (signal.SIGKILL, 5)]:
            for pid in [pid for tag in everyone for pid in st.stack_processes(tag)]:
                _kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and any(st.stack_processes(tag) for tag in everyone):
                time.sleep(0.5)


def _tail(log: Path, lines: int = 25) -> str:
    return "\n".join("    " + line for line in log.read_text(errors="replace").splitlines()[-lines:])


def autoscaler_config(cluster: ClusterSettings, gcs_address: str) -> dict:
    """Ray's autoscaler on its fake multi-node provider: the nodes it adds are real raylets
    started on this machine (ray/autoscaler/_private/fake_multi_node)."""
    return {
        "cluster_name": "orderflow-local",
        "max_workers": cluster.max_autoscaled,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": cluster.idle_timeout_s / 60,
        "provider": {
            "type": "fake_multinode",
            "gcs_address": gcs_address,  # else it assumes port 6379, Redis's here
            # Nodes on one machine share an address: the autoscaler tells them by node id.
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": cluster.head_cpus}, "node_config": {}, "max_workers": 0},
            WORKER_NODE_TYPE: {"resources": {"CPU": cluster.autoscaled_cpus}, "node_config": {},
                               "min_workers": 0, "max_workers": cluster.max_autoscaled},
        },
        "head_node_type": "ray.head.default",
        "auth": {"ssh_user": "unused"},
        "docker": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


# --- what runs where ---------------------------------------------------------------------

class Dashboard:
    """The Ray dashboard of a cluster: Serve's status API and Ray's state API."""

    def __init__(self, url: str, headers: dict[str, str]):
        self.url, self.headers = url, headers

    @classmethod
    def of_running(cls, stack: st.StackSettings) -> "Dashboard":
        """The dashboard of the cluster `orderflow cluster` runs from stack.run_dir, with the
        token that run made (RAY_AUTH_TOKEN when set instead)."""
        url = json.loads((stack.run_dir / "cluster.json").read_text())["dashboard"]
        token_file = stack.run_dir / "ray-auth-token"
        token = os.environ.get("RAY_AUTH_TOKEN") or (token_file.read_text() if token_file.exists() else "")
        return cls(url, {"Authorization": f"Bearer {token.strip()}"} if token else {})

    def _get(self, path: str, **params) -> dict:
        answer = httpx.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def serve_details(self) -> dict:
        """Serve's status API (GET /api/serve/applications/): applications, deployments,
        replicas with the node each runs on."""
        return self._get("/api/serve/applications/")

    def alive_nodes(self) -> dict[str, str]:
        """Node id -> name of the Ray nodes alive: `head`, `worker-N` (NODE_LABEL), or
        `autoscaled-<end of id>` for the nodes the autoscaler started (no NODE_LABEL)."""
        nodes = {}
        for node in self._get("/api/v0/nodes", limit=100)["data"]["result"]["result"]:
            if node["state"] == "ALIVE":
                name = (node.get("labels") or {}).get(NODE_LABEL) or f"{AUTOSCALED}{node['node_id'][-5:]}"
                nodes[node["node_id"]] = name
        return nodes

    def autoscaled_nodes(self) -> list[str]:
        """The names of the nodes alive that Ray's autoscaler started."""
        return sorted(name for name in self.alive_nodes().values() if name.startswith(AUTOSCALED))

    def placement(self) -> dict[str, dict[str, int]]:
        """Running replicas of each application, per node name."""
        nodes = self.alive_nodes()
        result = {}
        for app_name, app in self.serve_details().get("applications", {}).items():
            counts = Counter()
            for deployment in app.get("deployments", {}).values():
                for replica in deployment.get("replicas", []):
                    if replica.get("state") == "RUNNING":
                        counts[nodes.get(replica.get("node_id"), "lost")] += 1
            result[app_name] = dict(counts)
        return result

    def targets(self) -> dict[str, int]:
        """The replicas Serve's autoscaler wants now, per application."""
        return {app_name: sum(d.get("target_num_replicas") or 0 for d in app.get("deployments", {}).values())
                for app_name, app in self.serve_details().get("applications", {}).items()}

    def failed_deployments(self) -> str | None:
        try:
            applications = self.serve_details().get("applications", {})
        except httpx.HTTPError:
            return None
        failed = {name: app.get("message") for name, app in applications.items() if app.get("status") == "DEPLOY_FAILED"}
        return f"Serve could not deploy {failed}" if failed else None

    def placement_text(self) -> str:
        lines = []
        for app_name, per_node in self.placement().items():
            spread = ", ".join(f"{node}: {n}" for node, n in sorted(per_node.items()))
            lines.append(f"  {app_name:<13} {sum(per_node.values())} replicas ({spread})")
        return "\n".join(lines)


def write_endpoints(stack: st.StackSettings, dashboard: str) -> Path:
    """Where a test or bench finds the running cluster's dashboard."""
    path = stack.run_dir / "cluster.json"
    path.write_text(json.dumps({"dashboard": dashboard, "gateway": stack.gateway_url, "serve": stack.serve_url}))
    return path


# --- `orderflow cluster` -------------------------------------------------------------------

def run(no_seed: bool = False) -> int:
    """What `orderflow cluster` does: `orderflow run`'s checks, migrations, settings and
    gateway, on a cluster instead of one local Ray instance; Ctrl-C stops every node."""
    from deployments import cli

    stack, cluster = cluster_stack(), ClusterSettings()
    if (pid := cli._running_pid(stack)) is not None:
        cli.say(f"already running (pid {pid}); `make stop` stops it.")
        return 1
    if cli.preflight(start_servers=True, cluster=True):
        return 1
    cli.cmd_migrate(None)
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    stack.pid_file.write_text(str(os.getpid()))
    st.mark_processes(stack)
    stopping = threading.Event()
    nodes = Cluster(stack, cluster)
    nginx = mail_sink = None
    try:
        mail_sink = st.start_mail_sink(stack)
        environments = st.local_environments(stack, mail_sink)
        cli.say(f"starting a Ray cluster: a head and {cluster.workers} workers ...")
        dashboard = nodes.start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        nodes.deploy(environments)
        nginx = cli.open_gateway(stack, check_failed=dashboard.failed_deployments)
        if not no_seed:
            cli.cmd_seed(None)
        write_endpoints(stack, dashboard.url)
        cli.say("ready.")
        print(f"\n  API gateway     {stack.gateway_url}\n  Ray dashboard   {dashboard.url}\n"
              f"  Serve status    {dashboard.url}/api/serve/applications/ (`orderflow placement`)\n"
              f"  Replicas:\n{dashboard.placement_text()}\n\n  Ctrl-C (or `make stop`) stops every node.\n",
              flush=True)
        cli.serve_until(stopping, nginx, stack)
        return 0
    except st.StackError as exc:
        cli.say(str(exc))
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if nginx is not None:
            st.stop_process(nginx)
        nodes.stop()
        if mail_sink is not None:
            mail_sink.stop()
        stack.pid_file.unlink(missing_ok=True)
        (stack.run_dir / "cluster.json").unlink(missing_ok=True)
        cli.say("stopped.")


def show_placement() -> int:
    """`orderflow placement`: the replicas of each application per node of a running cluster."""
    stack = cluster_stack()
    if not (stack.run_dir / "cluster.json").exists():
        print("orderflow: no cluster runs from this directory (`make cluster` starts one).")
        return 1
    print(Dashboard.of_running(stack).placement_text())
    return 0
