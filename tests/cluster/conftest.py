"""A Ray cluster of a head and two workers on this machine, started as `make cluster` starts
it (`orderflow cluster`), with the e2e stack's databases, exchange and ports of its own, and
every process of every node stopped at the end, also when a test fails."""

import pytest

from deployments.cluster import ClusterSettings, Dashboard, all_settings
from deployments.stack import stack_processes
from tests.e2e.conftest import Stack, admin_token, client, running  # noqa: F401 (fixtures)


class ClusterStack(Stack):
    command = ("cluster", "--no-seed")

    def __init__(self, tmp):
        super().__init__(tmp)
        self.cluster = ClusterSettings()
        # A node the autoscaler added goes once idle this long (the default is longer).
        self.env["ORDERFLOW_CLUSTER_IDLE_TIMEOUT_S"] = "15"
        # Ray runs its workers (the replicas, Serve's proxies) at niceness 15 so that its own
        # daemons come first; here the load generator, PostgreSQL and nginx share the cores
        # with them, and would starve them: load measured at the client, not at the replicas.
        # On a real cluster nothing else runs on the nodes.
        self.env["RAY_worker_niceness"] = "0"
        # Password hashing at its production cost (the e2e stack's is cheaper): sign-ins are
        # the CPU work that scales auth here.
        self.env["AUTH_BCRYPT_ROUNDS"] = "12"

    @property
    def dashboard(self) -> Dashboard:
        return Dashboard.of_running(self.settings)

    def processes(self) -> list[int]:
        """Every node's, the autoscaler's nodes among the head's."""
        return [pid for tag in all_settings(self.settings, self.cluster) for pid in stack_processes(tag)]


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    yield from running(ClusterStack(tmp_path_factory.mktemp("cluster")))
