"""Autoscaling for real, each application on its own: a load on orders adds orders replicas
and leaves analytics at its minimum, orders goes back down once the load stops, and a load on
analytics adds analytics replicas and leaves orders at its minimum. (The autoscaler starting
a node: test_3_node_loss and bench/cluster_scaling.)"""

import asyncio
import json

import pytest

from tests.cluster.load import Load, Timeline, order_flow, reads, stats_reads, wait_until
from tests.e2e.conftest import OUTPUT

pytestmark = pytest.mark.timeout(1200)
# Pages of 200 orders: the replica's work (PostgreSQL, JSON), not the client's, is what grows.
ORDERS_READ = "/orders?limit=200"


def minimum(app: str) -> int:
    from deployments.stack import StackSettings, serve_config

    config = {a["name"]: a for a in serve_config(StackSettings())["applications"]}
    return config[app]["deployments"][0]["autoscaling_config"]["min_replicas"]


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
