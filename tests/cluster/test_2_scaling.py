"""Autoscaling for real, each application on its own: a load on orders adds orders replicas
and leaves analytics at its minimum, orders goes back down once the load stops, and a load on
analytics adds analytics replicas and leaves orders at its minimum. Then a load that wants
more replicas than the two workers hold makes Ray's autoscaler start a node, which it stops
again once the load is gone and the node is idle (the node a lost worker leaves wanted:
test_3_node_loss)."""

import asyncio
import functools
import json

import pytest

from tests.cluster.load import Load, Timeline, order_flow, reads, sign_ins, stats_reads, wait_until
from tests.e2e.conftest import OUTPUT

pytestmark = pytest.mark.timeout(1200)
# Pages of 200 orders: the replica's work (PostgreSQL, JSON), not the client's, is what grows.
ORDERS_READ = "/orders?limit=200"


@functools.cache
def deployment(app: str) -> dict:
    """The application's deployment in serve_config.yaml (read once: the waits below ask often)."""
    from deployments.stack import StackSettings, serve_config

    return {a["name"]: a for a in serve_config(StackSettings())["applications"]}[app]["deployments"][0]


def minimum(app: str) -> int:
    return deployment(app)["autoscaling_config"]["min_replicas"]


def cpus_at(replicas: dict[str, int]) -> float:
    """The CPUs the applications' replicas ask for (serve_config.yaml's ray_actor_options)."""
    return sum(n * deployment(app)["ray_actor_options"]["num_cpus"] for app, n in replicas.items())


async def test_each_application_scales_on_its_own_load_alone(stack, admin_token):
    dashboard = stack.dashboard
    async with Timeline(dashboard) as timeline:
        timeline.step = "orders placed"  # orders to page through
        async with Load(stack.url, admin_token, 16, order_flow):
            await asyncio.sleep(15)
        timeline.step = "orders reads"
        async with Load(stack.url, admin_token, 96, reads, ORDERS_READ):
            await wait_until(lambda: dashboard.targets()["orders"] > minimum("orders"), "orders adds replicas", 300)
            await wait_until(lambda: sum(dashboard.placement()["orders"].values()) > minimum("orders"),
                             "the added orders replicas run", 180)
        timeline.step = "no load"
        await wait_until(lambda: dashboard.targets()["orders"] == minimum("orders"), "orders back to its minimum",
                         400, every_s=5)
        timeline.step = "analytics reads"
        async with Load(stack.url, admin_token, 32, stats_reads):
            await wait_until(lambda: dashboard.targets()["analytics"] > minimum("analytics"),
                             "analytics adds a replica", 300)
    (OUTPUT / "cluster-scaling.json").write_text(json.dumps(timeline.samples, indent=1))
    loaded = [s for s in timeline.samples if s["step"] in ("orders reads", "analytics reads")]
    assert all(s["targets"]["analytics"] == minimum("analytics") for s in loaded if s["step"] == "orders reads")
    assert all(s["targets"]["orders"] == minimum("orders") for s in loaded if s["step"] == "analytics reads")
    assert timeline.peak("orders", "orders reads") > minimum("orders")


@pytest.mark.timeout(1800)
async def test_a_load_beyond_the_workers_adds_a_node_which_goes_once_idle(stack, admin_token):
    """Sign-ins (password hashing at the production cost, CPU on the auth replicas) scale auth
    and statistics scale analytics: more CPU than the two workers have, so Ray's autoscaler
    starts a node for the replicas that do not fit, and stops it once the load is gone, the
    replicas are back to their minimums and the node is idle."""
    dashboard = stack.dashboard
    capacity = stack.cluster.workers * stack.cluster.worker_cpus
    timeline = Timeline(dashboard)
    loads = {"sign-ins": Load(stack.url, admin_token, 64, sign_ins),
             "statistics": Load(stack.url, admin_token, 32, stats_reads)}
    try:
        async with timeline:
            # A node an earlier test's load made the autoscaler add holds CPU this load would
            # fill instead of wanting a node: the test starts from the workers alone (step "idle").
            await wait_until(lambda: not dashboard.autoscaled_nodes(), "no node added by an earlier load", 600,
                             every_s=5)
            timeline.step = "sign-ins and statistics"
            async with loads["sign-ins"], loads["statistics"]:
                await wait_until(lambda: cpus_at(dashboard.targets()) > capacity,
                                 "the replicas wanted outgrow the workers", 300)
                # A node the autoscaler starts on these starved cores can time out while it starts
                # (its raylet waits 15 s for its dashboard agent), and the autoscaler tries again.
                added = (await wait_until(dashboard.autoscaled_nodes, "the autoscaler adds a node", 600))[0]
                await wait_until(lambda: any(per_node.get(added) for per_node in dashboard.placement().values()),
                                 "replicas run on the added node", 180)
            timeline.step = "no load"
            await wait_until(lambda: all(dashboard.targets()[app] == minimum(app) for app in ("auth", "analytics")),
                             "auth and analytics back to their minimums", 600, every_s=5)
            await wait_until(lambda: not dashboard.autoscaled_nodes(), "the added node stopped once idle", 300,
                             every_s=5)
    finally:
        (OUTPUT / "cluster-autoscaling.json").write_text(json.dumps(
            {"answers": {name: load.record.summary() for name, load in loads.items()}, "samples": timeline.samples},
            indent=1))
    loaded = [s for s in timeline.samples if s["step"] == "sign-ins and statistics"]
    assert max(cpus_at(s["targets"]) for s in loaded) > capacity
