"""A worker node lost under a steady order load: Serve reschedules its replicas, the load
goes on, and nothing acknowledged is lost."""

import asyncio
import json
import time

import asyncpg
import pytest

from deployments.cluster import kill_node
from tests.cluster.load import Load, wait_until
from tests.e2e.conftest import OUTPUT

pytestmark = pytest.mark.timeout(600)


def recovered(dashboard, victim: str):
    """Every application runs its target replicas again, none on the lost node, which Ray
    no longer lists: the placement then, else None."""
    if victim in dashboard.alive_nodes().values():
        return None
    placement, targets = dashboard.placement(), dashboard.targets()
    if all(sum(placement.get(app, {}).values()) >= wanted >= 1 and "lost" not in placement.get(app, {})
           for app, wanted in targets.items()):
        return placement
    return None


async def test_losing_a_worker_under_load_loses_no_acknowledged_write(stack, admin_token):
    dashboard = stack.dashboard
    before = dashboard.placement()
    # The worker that holds the most replicas.
    victim = max(stack.cluster.worker_names, key=lambda node: sum(p.get(node, 0) for p in before.values()))
    async with Load(stack.url, admin_token, workers=8) as load:
        await asyncio.sleep(10)
        answered_before = load.record.total
        killed_at = time.monotonic()
        assert kill_node(stack.settings, victim)
        after = await wait_until(lambda: recovered(dashboard, victim), "every application back to its replicas", 300)
        recovery_s = time.monotonic() - killed_at
        created_at_recovery = len(load.record.created)
        await asyncio.sleep(10)
    record = load.record
    failed_window = [f for f in record.failures if f[0] >= killed_at]
    figures = record.summary() | {
        "before_kill": answered_before,
        "failed_after_kill_window_s": round(max((f[0] for f in failed_window), default=killed_at) - killed_at, 1),
        "recovery_s": round(recovery_s, 1), "lost": victim, "placement_before": before, "placement_after": after,
        "created": len(record.created), "paid": len(record.paid),
    }
    (OUTPUT / "cluster-node-loss.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))

    # Failures are answers, never hangs or dropped connections: a 5xx problem (the gateway's
    # 504 for a request that waited its timeout for a replica, not Serve's text/plain 408).
    assert record.hangs == 0 and not record.broken, figures
    assert all(status >= 500 for status in record.statuses if status >= 400), figures
    # The load went on after the nodes left took over.
    assert len(record.created) > created_at_recovery, figures
    # The lost worker's CPU held replicas the one left cannot: Ray's autoscaler started a node.
    assert dashboard.autoscaled_nodes(), after
    await acknowledged_writes_kept(stack, record)


async def acknowledged_writes_kept(stack, record) -> None:
    orders = await asyncpg.connect(stack.database_url)
    try:
        kept = {str(r["id"]) for r in await orders.fetch(
            "SELECT id FROM orders WHERE id = ANY($1::uuid[])", record.created)}
        assert kept == set(record.created), f"{len(set(record.created) - kept)} orders answered 201 are missing"
        paid = {str(r["order_id"]) for r in await orders.fetch(
            "SELECT order_id FROM order_status_history WHERE status = 'paid' AND order_id = ANY($1::uuid[])",
            record.paid)}
        assert paid == set(record.paid), f"{len(set(record.paid) - paid)} changes answered 200 are not in history"
    finally:
        await orders.close()

    notifications = await asyncpg.connect(stack.notifications_database_url)
    try:
        async def delivered():
            rows = await notifications.fetch(
                "SELECT order_id::text, kind, count(*) AS n FROM notifications WHERE order_id = ANY($1::uuid[]) "
                "GROUP BY order_id, kind", record.created)
            return {(r["order_id"], r["kind"]): r["n"] for r in rows}

        expected = {(o, "order_created") for o in record.created} | {(o, "status_changed") for o in record.paid}
        deadline = time.monotonic() + 120
        while not expected <= (got := await delivered()).keys() and time.monotonic() < deadline:
            await asyncio.sleep(2)
        assert expected <= got.keys(), f"{len(expected - got.keys())} acknowledged events never reached the log"
        assert all(got[key] == 1 for key in expected), {k: n for k, n in got.items() if n != 1}
    finally:
        await notifications.close()
