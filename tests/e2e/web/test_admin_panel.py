"""The admin panel (/admin/, web/admin/) in Chromium through the e2e stack's gateway: sign-in with
the opened page kept, the order walked through every status with its buttons, the 412 of two
browsers, the desktop notification's link, staff only, live updates with the badge, analytics
and reports, users and roles; axe on every page, no console error (the `page` fixture), and a
screenshot of each page under test-output/."""

import os
import re
import shutil
from datetime import date, timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from deployments.stack import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD
from tests.e2e.conftest import ROOT
from tests.e2e.support import login, place_order, register, user_id
from tests.factories import PASSWORD, unique_email
from tests.support import wait_for

DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
STEPS = ["Paid", "Picking", "Packed", "Shipped", "Delivered"]


def to_docs(shot, name: str) -> None:
    """Refresh the README's screenshot `name` only when asked (ORDERFLOW_DOCS_SCREENSHOTS=1):
    a test run leaves the checkout as it found it."""
    if os.environ.get("ORDERFLOW_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOTS / name)


def sign_in(page: Page, email: str = DEV_ADMIN_EMAIL, password: str = DEV_ADMIN_PASSWORD) -> None:
    expect(page.get_by_role("heading", name="Sign in to the admin panel")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def status_buttons(page: Page) -> list[str]:
    return [name.strip() for name in page.locator(".status-actions button").all_inner_texts()]


def notification_of(client: httpx.Client, order: dict) -> dict:
    """The notification service's notification of `order`'s creation, once it is in the log."""
    def find():
        items = client.get("/notifications", params={"limit": 200}).json()["items"]
        return next((n for n in items if n["order_id"] == order["id"] and n["kind"] == "order_created"), None)

    return wait_for(find, f"the notification of order {order['number']}", timeout_s=30)


def open_order_signed_in(page: Page, order: dict) -> None:
    page.goto(f"/admin/orders/{order['id']}")
    sign_in(page)
    expect(page.get_by_role("heading", level=1, name=re.compile(order["number"]))).to_be_visible()


def test_order_opened_signed_out_is_shown_after_sign_in_and_walks_to_delivered(page, client, axe, screenshot):
    order = place_order(client)
    page.goto(f"/admin/orders/{order['id']}")
    expect(page.get_by_text("After signing in you will see the page you opened.")).to_be_visible()
    axe(page, "admin-sign-in")
    screenshot(page, "admin-sign-in")

    sign_in(page)
    expect(page.get_by_role("heading", level=1, name=re.compile(order["number"]))).to_be_visible()
    assert page.url.endswith(f"/admin/orders/{order['id']}")
    expect(page.get_by_role("rowheader", name="Mug")).to_be_visible()
    expect(page.locator("td.total")).to_have_text(re.compile(r"129[.,]30"))
    expect(page.locator(".status-actions button")).to_have_count(2)
    assert status_buttons(page) == ["Mark as Paid", "Cancel order"]
    axe(page, "admin-order-new")

    allowed = {"Paid": ["Mark as Picking", "Cancel order"], "Picking": ["Mark as Packed", "Cancel order"],
               "Packed": ["Mark as Shipped"], "Shipped": ["Mark as Delivered"], "Delivered": []}
    for step in STEPS:
        page.get_by_role("button", name=f"Mark as {step}").click()
        expect(page.get_by_role("status").filter(has_text=f"is now {step}")).to_be_visible()
        expect(page.locator(".order-title .status")).to_have_text(step)
        expect(page.locator(".status-actions button")).to_have_count(len(allowed[step]))
        assert status_buttons(page) == allowed[step], step
    expect(page.get_by_text("its status cannot change any more")).to_be_visible()
    history = page.locator("table.history tbody tr")
    expect(history).to_have_count(6)
    expect(history.last).to_contain_text(DEV_ADMIN_EMAIL)
    assert client.get(f"/orders/{order['id']}").json()["status"] == "delivered"

    axe(page, "admin-order")
    to_docs(screenshot(page, "admin-order"), "admin-order.png")


def test_second_browser_changing_the_same_order_sees_the_412_message(open_page, client):
    order = place_order(client)
    first, second = open_page(), open_page()
    # The second browser's live feed is held back until it has clicked, as when both people
    # press a button within the same moment; the WebSocket itself is the real one.
    held: list = []

    def hold_messages(ws):
        server = ws.connect_to_server()
        server.on_message(lambda message: held.append(message))

    second.context.route_web_socket(re.compile(r"/notifications/ws"), hold_messages)
    open_order_signed_in(first, order)
    open_order_signed_in(second, order)

    first.get_by_role("button", name="Mark as Paid").click()
    expect(first.locator(".order-title .status")).to_have_text("Paid")
    second.get_by_role("button", name="Mark as Paid").click()

    alert = second.get_by_role("alert")
    expect(alert).to_contain_text("Someone else changed this order first")
    # Reloaded: the second browser now shows the order as it is, and the buttons that fit it.
    expect(second.locator(".order-title .status")).to_have_text("Paid")
    assert status_buttons(second) == ["Mark as Picking", "Cancel order"]
    history = client.get(f"/orders/{order['id']}/history").json()
    assert [entry["status"] for entry in history] == ["new", "paid"]


def test_the_notification_link_opens_that_orders_page(page, client):
    order = place_order(client)
    url = notification_of(client, order)["url"]
    assert url.endswith(f"/admin/orders/{order['id']}")
    page.goto(url)
    sign_in(page)
    expect(page.get_by_role("heading", level=1, name=re.compile(order["number"]))).to_be_visible()
    expect(page.get_by_role("button", name="Mark as Paid")).to_be_visible()


def test_customer_cannot_reach_admin_data(open_page, stack, client, axe, screenshot):
    order = place_order(client)
    customer = register(stack, "panelcustomer")
    token = login(stack.url, email=customer, password=PASSWORD)["access_token"]
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api:
        assert api.get(f"/orders/{order['id']}").status_code == 404
        assert api.get("/auth/users").status_code == 403
        assert api.get("/analytics/stats").status_code == 403
        assert api.get("/notifications").status_code == 403
        assert api.post(f"/orders/{order['id']}/status", json={"status": "paid"},
                        headers={"If-Match": '"1"'}).status_code == 403

    page = open_page()
    data_requests = []
    page.on("request", lambda request: data_requests.append(request.url)
            if re.match(r"https?://[^/]+/(orders|analytics|notifications|auth/users)(/|\?|$)", request.url) else None)
    page.goto(f"/admin/orders/{order['id']}")
    sign_in(page, customer, PASSWORD)
    expect(page.get_by_role("heading", level=1, name="Staff only")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(customer)
    expect(page.get_by_text(order["number"])).to_have_count(0)
    expect(page.get_by_role("navigation")).to_have_count(0)
    assert data_requests == []
    axe(page, "admin-staff-only")
    screenshot(page, "admin-staff-only")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the admin panel")).to_be_visible()
    expect(page.get_by_text("You have signed out.")).to_be_visible()


def test_orders_list_filters_pages_and_updates_live(page, client, axe, screenshot):
    email = unique_email("paging")
    placed = [place_order(client, email) for _ in range(27)]
    notification_of(client, placed[-1])  # what came before the panel opened is not news
    page.goto("/admin/")
    sign_in(page)
    expect(page.get_by_role("heading", level=1, name="Orders")).to_be_visible()
    expect(page.get_by_text("Live updates on")).to_be_visible()
    rows = page.locator("table.orders tbody tr")

    # Live: an order placed meanwhile comes to the top of the open list, with the badge.
    badge = page.locator(".live-badge")
    expect(badge).to_have_text("No new updates")
    fresh = place_order(client, unique_email("live"))
    expect(rows.first).to_contain_text(fresh["number"])
    expect(badge).to_have_text("1 new update")
    expect(page.locator("tr.changed").first).to_contain_text(fresh["number"])
    axe(page, "admin-orders")
    screenshot(page, "admin-orders")
    badge.click()
    panel = page.get_by_role("region", name="Recent updates")
    expect(panel.get_by_role("link", name=f"New order {fresh['number']}")).to_be_visible()
    axe(page, "admin-live-panel")
    screenshot(page, "admin-live-panel")
    panel.get_by_role("button", name="Mark all as seen").click()
    expect(badge).to_have_text("No new updates")

    page.get_by_label("Search").fill(email.split("@")[0].upper())
    page.get_by_role("button", name="Show orders").click()
    expect(page.locator(".count")).to_have_text("27 orders")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text(placed[-1]["number"])  # newest first
    page.get_by_role("button", name="Next page").click()
    expect(rows).to_have_count(2)
    expect(rows.last).to_contain_text(placed[0]["number"])
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(rows).to_have_count(25)
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()

    # Several statuses at once: one of the orders is paid, the rest new.
    paid = placed[3]
    assert client.post(f"/orders/{paid['id']}/status", json={"status": "paid"},
                       headers={"If-Match": f'"{paid["version"]}"'}).status_code == 200
    page.get_by_label("Paid", exact=True).check()
    page.get_by_role("button", name="Show orders").click()
    expect(page.locator(".count")).to_have_text("1 order")
    expect(rows).to_have_count(1)
    page.get_by_label("New", exact=True).check()
    page.get_by_role("button", name="Show orders").click()
    expect(page.locator(".count")).to_have_text("27 orders")
    assert "status=paid" in page.url and "status=new" in page.url

    # The date range: placed today (the browser's day) is inside today..today, outside ..yesterday.
    today = date.today()
    page.get_by_label("Placed from").fill(today.isoformat())
    page.get_by_label("Placed until").fill(today.isoformat())
    page.get_by_role("button", name="Show orders").click()
    expect(page.locator(".count")).to_have_text("27 orders")
    page.get_by_label("Placed from").fill((today - timedelta(days=3)).isoformat())
    page.get_by_label("Placed until").fill((today - timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Show orders").click()
    expect(page.get_by_text("No orders match these filters.")).to_be_visible()

    page.get_by_role("button", name="Clear filters").click()
    expect(page.locator(".count")).not_to_have_text("27 orders")

    page.get_by_label("Language").select_option("pl")
    expect(page.get_by_role("heading", level=1, name="Zamówienia")).to_be_visible()
    expect(page.get_by_role("button", name="Pokaż zamówienia")).to_be_visible()
    # Worded as on the customer page (the words both pages use are in web/shared/i18n.ts).
    expect(page.get_by_role("button", name="Wyloguj się", exact=True)).to_be_visible()
    axe(page, "admin-orders-pl")
    screenshot(page, "admin-orders-pl")
    page.get_by_label("Język").select_option("en")


def test_open_order_reloads_when_someone_else_changes_it(page, client):
    order = place_order(client)
    notification_of(client, order)
    open_order_signed_in(page, order)
    expect(page.get_by_text("Live updates on")).to_be_visible()
    assert client.post(f"/orders/{order['id']}/status", json={"status": "paid"},
                       headers={"If-Match": f'"{order["version"]}"'}).status_code == 200
    expect(page.locator(".order-title .status")).to_have_text("Paid")
    assert status_buttons(page) == ["Mark as Picking", "Cancel order"]
    # Shown on the open page, so not counted as unseen; another order's news is.
    expect(page.locator(".live-badge")).to_have_text("No new updates")
    other = place_order(client)
    expect(page.locator(".live-badge")).to_have_text("1 new update")
    page.locator(".live-badge").click()
    page.get_by_role("link", name=f"New order {other['number']}").click()
    expect(page.get_by_role("heading", level=1, name=re.compile(other["number"]))).to_be_visible()
    assert page.url.endswith(f"/admin/orders/{other['id']}")


def test_analytics_charts_and_reports(page, client, axe, screenshot):
    for _ in range(3):
        place_order(client)
    page.goto("/admin/analytics")
    sign_in(page)
    expect(page.get_by_role("heading", level=1, name="Analytics")).to_be_visible()
    for title in ["Orders per day", "Revenue per currency: PLN", "Status distribution", "Top products (pieces sold)"]:
        chart = page.get_by_role("region", name=title)
        expect(chart).to_be_visible()
        expect(chart.get_by_role("img", name=re.compile(re.escape(title)))).to_be_visible()
        expect(chart.locator("table caption")).to_have_text(f"Data table: {title}")
    products = page.get_by_role("region", name="Top products (pieces sold)")
    expect(products.locator("svg text", has_text="Mug")).to_have_count(1)
    assert int(page.locator('[data-stat="orders"]').inner_text()) >= 3

    page.get_by_label("Report period").select_option("hour")
    page.get_by_role("button", name="Make a report now").click()
    made = page.get_by_role("status").filter(has_text="is ready")
    expect(made).to_be_visible()
    name = re.search(r"Report (\S+) is ready", made.inner_text()).group(1)
    with page.expect_download() as download:
        page.get_by_role("button", name=f"Download {name}").click()
    path = download.value.path()
    assert download.value.suggested_filename == name
    assert path.read_text() == client.get(f"/analytics/reports/{name}").text

    axe(page, "admin-analytics")
    to_docs(screenshot(page, "admin-analytics"), "admin-analytics.png")


def test_users_page_grants_and_revokes_a_role(page, stack, client, axe, screenshot):
    address = register(stack, "Rolando")
    page.goto("/admin/users")
    sign_in(page)
    expect(page.get_by_role("heading", level=1, name="Users and roles")).to_be_visible()
    row = page.locator(f'tr[data-user-email="{address}"]')
    expect(row.locator(".roles")).to_have_text("customer")

    row.get_by_role("button", name="Grant warehouse to Rolando").click()
    expect(page.get_by_role("status").filter(has_text="Rolando now has the warehouse role.")).to_be_visible()
    expect(row.locator(".roles")).to_contain_text("warehouse")
    assert client.get(f"/auth/users/{user_id(client, address)}/roles").json()["roles"] == ["customer", "warehouse"]
    axe(page, "admin-users")
    screenshot(page, "admin-users")

    row.get_by_role("button", name="Revoke warehouse from Rolando").click()
    expect(page.get_by_role("status").filter(has_text="no longer has the warehouse role")).to_be_visible()
    expect(row.locator(".roles")).to_have_text("customer")
    assert client.get(f"/auth/users/{user_id(client, address)}/roles").json()["roles"] == ["customer"]


@pytest.mark.parametrize("path", ["/admin/users", "/admin/nowhere"])
def test_warehouse_staff_sees_no_users_page_and_unknown_paths_say_so(open_page, stack, client, path):
    address = register(stack, "warehouseman")
    assert client.put(f"/auth/users/{user_id(client, address)}/roles",
                      json={"roles": ["warehouse"]}).status_code == 200
    page = open_page()
    page.goto(path)
    sign_in(page, address, PASSWORD)
    expect(page.get_by_role("link", name="Users and roles")).to_have_count(0)
    heading = "Administrators only" if path == "/admin/users" else "Page not found"
    expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
