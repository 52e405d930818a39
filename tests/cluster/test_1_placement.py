"""The four applications on a cluster of a head and two workers, the gateway in front."""

import httpx

SERVICES = ("orders", "auth", "notifications", "analytics")


def test_every_node_is_up_and_replicas_are_spread_over_the_workers(stack):
    dashboard = stack.dashboard
    assert sorted(dashboard.alive_nodes().values()) == ["head", "worker-1", "worker-2"]
    placement = dashboard.placement()
    assert set(placement) == {"orders", "auth", "notification", "analytics"}
    assert all(sum(per_node.values()) >= 1 for per_node in placement.values()), placement
    used = {node for per_node in placement.values() for node in per_node}
    # The head has no CPU for replicas (ClusterSettings.head_cpus): they run on both workers.
    assert used == {"worker-1", "worker-2"}, placement


def test_the_gateway_reaches_every_service(stack):
    for service in SERVICES:
        assert httpx.get(f"{stack.url}/{service}/ready", timeout=10).status_code == 200


def test_orderflow_placement_prints_where_replicas_run(stack):
    import subprocess
    import sys
    from pathlib import Path

    shown = subprocess.run([str(Path(sys.executable).with_name("orderflow")), "placement"], env=stack.env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "orders" in shown.stdout and "worker-1" in shown.stdout and "worker-2" in shown.stdout
