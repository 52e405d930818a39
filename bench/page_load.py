"""Admin panel page load through the gateway, cold and warm cache (issue 12).

The stack as `make run` starts it; Debian's Chromium (headless, as the browser tests run it)
opens /admin/ (orders list) and /admin/orders/<id> signed in as the admin. For each page:

- cold: a new browser context (empty HTTP cache; the session cookie set by POST /auth/session
  through the context's own request API, so no page or asset is fetched before);
- warm: the same page reloaded in that context (hashed assets from the cache, the HTML
  revalidated: `Cache-Control: no-cache`).

Two figures per load, from the page's own clock (ms since navigation start):
first contentful paint (the Performance API's `first-contentful-paint`) and "data shown"
(the orders table or the order's heading rendered, after the session refresh and the API
calls). Prints medians over the runs and the warm/cold ratio (the baseline is the cold load
of the same page in the same run); writes bench/results/page_load-<time>.json.

    .venv/bin/python -m bench.page_load [--runs 7]
"""

import argparse
import asyncio
import json
import statistics
from datetime import UTC, datetime

import aio_pika
import httpx
from playwright.sync_api import Browser, sync_playwright

from actors.common.db import drop_database
from actors.common.settings import CommonSettings
from bench.support import ADMIN, RESULTS, BenchWorld, start_stack, stop_on_signals, wait_serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000

FCP_JS = """() => new Promise((resolve) => {
  const entry = performance.getEntriesByName("first-contentful-paint")[0];
  if (entry) return resolve(entry.startTime);
  new PerformanceObserver((list, observer) => {
    const fcp = list.getEntriesByName("first-contentful-paint")[0];
    if (fcp) { observer.disconnect(); resolve(fcp.startTime); }
  }).observe({ type: "paint", buffered: true });
})"""


def measure(browser: Browser, base_url: str, path: str, ready_selector: str) -> dict:
    """One cold load of `path` in a new context, then one warm reload in it."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        signed_in = context.request.post("/auth/session", data=ADMIN, headers={"X-Orderflow-CSRF": "1"})
        assert signed_in.ok, signed_in.text()
        page = context.new_page()
        loads = {}
        for kind in ("cold", "warm"):
            if kind == "cold":
                page.goto(path, wait_until="commit")
            else:
                page.reload(wait_until="commit")
            page.wait_for_selector(ready_selector, state="visible")
            data_ms = page.evaluate("() => performance.now()")
            fcp_ms = page.evaluate(FCP_JS)
            cached = page.evaluate("""() => performance.getEntriesByType("resource")
                .filter((r) => r.name.includes("/assets/")).map((r) => r.transferSize === 0)""")
            loads[kind] = {"fcp_ms": fcp_ms, "data_shown_ms": data_ms,
                           "assets": len(cached), "assets_from_cache": sum(cached)}
        return loads
    finally:
        context.close()


def summary(samples: list[dict], kind: str, metric: str) -> float:
    return statistics.median(sample[kind][metric] for sample in samples)


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    with BenchWorld("pageload") as world:
        notifications_db = f"postgresql://postgres@127.0.0.1:5432/{world.namespace}_notifications"
        queue = f"{world.namespace}_notifications"
        world.env |= {"NOTIFY_DATABASE_URL": notifications_db, "NOTIFY_QUEUE": queue,
                      "REPORTS_DIR": str(world.work / "reports")}
        target = None
        try:
            print("starting the stack ...", flush=True)
            target = start_stack("page load", world)
            wait_serving(target.process, f"{target.base_url}/notifications/ready")
            token = target.login()
            with httpx.Client(base_url=target.base_url, headers={"Authorization": f"Bearer {token}"},
                              timeout=30) as api:
                orders = []
                for n in range(30):
                    response = api.post("/orders", json={
                        "customer": {"email": f"bench{n}@example.com", "name": f"Bench Customer {n}"},
                        "currency": "PLN",
                        "items": [{"sku": "MUG-01", "name": "Mug", "quantity": 2, "unit_price": "39.90"}]})
                    response.raise_for_status()
                    orders.append(response.json())
            pages = {
                "/admin/ (orders list)": ("/admin/", "table.orders tbody tr"),
                "/admin/orders/<id>": (f"/admin/orders/{orders[0]['id']}", "h1.order-title"),
            }
            results: dict[str, list[dict]] = {name: [] for name in pages}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                try:
                    for name, (path, ready) in pages.items():  # one unmeasured load warms the servers
                        measure(browser, target.base_url, path, ready)
                    for run in range(args.runs):
                        for name, (path, ready) in pages.items():
                            results[name].append(measure(browser, target.base_url, path, ready))
                        print(f"run {run + 1}/{args.runs} done", flush=True)
                finally:
                    browser.close()
        finally:
            if target is not None:
                target.stop()

            async def clean_up():
                await drop_database(notifications_db)
                connection = await aio_pika.connect(CommonSettings().amqp_url)
                async with connection:
                    channel = await connection.channel()
                    await channel.queue_delete(queue)

            asyncio.run(clean_up())

    report = {"runs": args.runs, "measured_at": datetime.now(UTC).isoformat(), "pages": {}}
    print(f"\nmedians over {args.runs} runs, ms since navigation start (Chromium headless, through the gateway)")
    print(f"{'page':26} {'metric':22} {'cold':>8} {'warm':>8} {'warm/cold':>10}")
    for name, samples in results.items():
        page_report = {"samples": samples}
        for metric, label in (("fcp_ms", "first contentful paint"), ("data_shown_ms", "data shown")):
            cold, warm = summary(samples, "cold", metric), summary(samples, "warm", metric)
            page_report[metric] = {"cold_median": cold, "warm_median": warm, "ratio_warm_cold": warm / cold}
            print(f"{name:26} {label:22} {cold:8.1f} {warm:8.1f} {warm / cold:10.2f}")
        warm_cached = samples[0]["warm"]
        print(f"{'':26} assets from cache when warm: {warm_cached['assets_from_cache']}/{warm_cached['assets']}")
        report["pages"][name] = page_report
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"page_load-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {path.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
