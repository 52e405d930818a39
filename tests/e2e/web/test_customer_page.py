"""The customer page (/) in a real browser through the gateway: follow an order by number and
email, see a staff change arrive by itself, cancel with a confirmation, sign in to an account,
English and Polish. Each view gets an axe-core scan and a screenshot under test-output/."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import place_order, register
from tests.factories import PASSWORD, unique_email

pytestmark = pytest.mark.e2e

# The page polls every 3 s: a change shows within two polls and a slow answer.
LIVE_MS = 10_000
POLISH_DATE = re.compile(r"\d{1,2} (sty|lut|mar|kwi|maj|cze|lip|sie|wrz|paź|lis|gru) \d{4}")


@pytest.fixture
def order(anonymous) -> dict:
    """A guest's new order: Mug 2 x 39.90 and Cap 1 x 49.50 PLN (total 129.30)."""
    return place_order(anonymous, unique_email("web-customer"))


def follow(page: Page, number: str, email: str, *, form: str = "Follow an order", button: str = "Follow order",
           number_label: str = "Order number", email_label: str = "Email") -> None:
    page.goto("/")
    follow_form = page.get_by_role("form", name=form)
    follow_form.get_by_label(number_label).fill(number)
    follow_form.get_by_label(email_label).fill(email)
    follow_form.get_by_role("button", name=button).click()


def set_status(client, order_id: str, status: str) -> dict:
    current = client.get(f"/orders/{order_id}").json()
    response = client.post(f"/orders/{order_id}/status", json={"status": status},
                           headers={"If-Match": f'"{current["version"]}"'})
    assert response.status_code == 200, response.text
    return response.json()


def no_token_in_storage(page: Page) -> None:
    stored = page.evaluate("() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert "eyJ" not in stored, f"a token in web storage: {stored}"


def test_follow_an_order_and_see_a_staff_change_arrive(page, order, client, axe, screenshot):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Track your order")
    axe(page, "customer-signin")
    screenshot(page, "customer-signin")

    follow(page, order["number"], order["customer"]["email"])

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {order['number']}")
    items = page.locator(".items-table tbody tr")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("Mug")
    expect(items.nth(0)).to_contain_text("PLN 39.90")
    expect(items.nth(0)).to_contain_text("PLN 79.80")
    expect(items.nth(0).locator("td").nth(1)).to_have_text("2")
    expect(items.nth(1)).to_contain_text("Cap")
    expect(page.locator(".order-total")).to_have_text("PLN 129.30")
    expect(page.locator(".current-status")).to_have_text("New")
    expect(page.locator(".timeline li")).to_have_count(1)
    expect(page.get_by_text("Following order " + order["number"])).to_be_visible()
    no_token_in_storage(page)
    axe(page, "customer-order")
    screenshot(page, "customer-order")

    # Staff move it on through the API; the open page shows each change by itself.
    set_status(client, order["id"], "paid")
    expect(page.locator(".current-status")).to_have_text("Paid", timeout=LIVE_MS)
    expect(page.locator(".timeline li")).to_have_count(2)
    expect(page.get_by_role("button", name="Cancel order")).to_have_count(0)
    set_status(client, order["id"], "picking")
    expect(page.locator(".current-status")).to_have_text("Picking", timeout=LIVE_MS)
    expect(page.locator(".timeline li")).to_have_count(3)
    expect(page.locator(".timeline li").last).to_contain_text("Picking")
    screenshot(page, "customer-order-live")

    # A reload keeps the session (the HttpOnly cookie), not a token in storage.
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {order['number']}")
    expect(page.locator(".current-status")).to_have_text("Picking")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Track your order")
    expect(page.get_by_role("status").filter(has_text="You have signed out.")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Track your order")


def test_cancel_asks_first_and_cancels_a_new_order(page, order, client, axe, screenshot):
    follow(page, order["number"], order["customer"]["email"])
    expect(page.locator(".current-status")).to_have_text("New")

    page.get_by_role("button", name="Cancel order").click()
    dialog = page.get_by_role("dialog", name=f"Cancel order {order['number']}?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Keep order")).to_be_focused()
    axe(page, "customer-cancel-dialog")
    screenshot(page, "customer-cancel-dialog")

    # Keeping it changes nothing; focus goes back to the button that opened the dialog.
    dialog.get_by_role("button", name="Keep order").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel order")).to_be_focused()
    assert client.get(f"/orders/{order['id']}").json()["status"] == "new"

    # Escape closes it too, without cancelling.
    page.get_by_role("button", name="Cancel order").click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert client.get(f"/orders/{order['id']}").json()["status"] == "new"

    page.get_by_role("button", name="Cancel order").click()
    dialog.get_by_role("button", name="Cancel order").click()
    expect(page.get_by_role("status").filter(has_text="Your order has been cancelled.")).to_be_visible()
    expect(page.locator(".current-status")).to_have_text("Cancelled")
    expect(page.locator(".timeline li").last).to_contain_text("Cancelled")
    expect(page.get_by_role("button", name="Cancel order")).to_have_count(0)
    assert client.get(f"/orders/{order['id']}").json()["status"] == "cancelled"
    axe(page, "customer-order-cancelled")
    screenshot(page, "customer-order-cancelled")


def test_a_wrong_email_shows_the_message_and_no_order(page, order, axe, screenshot):
    follow(page, order["number"], unique_email("someone-else"))

    alert = page.get_by_role("form", name="Follow an order").get_by_role("alert")
    expect(alert).to_have_text("We found no order with this number and email. Check both and try again.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Track your order")
    expect(page.locator(".items-table")).to_have_count(0)
    expect(page.get_by_text("Mug")).to_have_count(0)
    axe(page, "customer-signin-error")
    screenshot(page, "customer-signin-error")


def test_empty_fields_are_named_not_sent(page):
    page.goto("/")
    follow_form = page.get_by_role("form", name="Follow an order")
    follow_form.get_by_role("button", name="Follow order").click()
    expect(follow_form.get_by_label("Order number")).to_be_focused()
    expect(follow_form.get_by_label("Order number")).to_have_attribute("aria-invalid", "true")
    expect(follow_form.get_by_text("Fill in Order number.")).to_be_visible()
    expect(follow_form.get_by_text("Fill in Email.")).to_be_visible()


def test_polish_browser_gets_polish_words_numbers_and_dates(open_page, order, axe, screenshot):
    page = open_page(locale="pl-PL")
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Śledź swoje zamówienie")
    follow(page, order["number"], order["customer"]["email"], form="Sprawdź zamówienie",
           button="Pokaż zamówienie", number_label="Numer zamówienia", email_label="E-mail")

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Zamówienie {order['number']}")
    expect(page.locator(".current-status")).to_have_text("Nowe")
    # Polish money: a decimal comma and the currency after the amount (with a no-break space).
    expect(page.locator(".order-total")).to_have_text(re.compile(r"^129,30\s+zł$"))
    expect(page.locator(".items-table tbody tr").nth(0)).to_contain_text("39,90")
    expect(page.get_by_text(re.compile(r"^Złożone "))).to_have_text(POLISH_DATE)
    expect(page.get_by_role("button", name="Anuluj zamówienie")).to_be_visible()
    axe(page, "customer-order-pl")
    screenshot(page, "customer-order-pl")

    # Switched to English, and remembered across a reload.
    page.get_by_label("Język").select_option("en")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {order['number']}")
    expect(page.locator(".order-total")).to_have_text("PLN 129.30")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.reload()
    expect(page.locator(".current-status")).to_have_text("New")
    expect(page.get_by_label("Language")).to_have_value("en")


def test_an_account_sees_all_its_orders(stack, page, anonymous, axe, screenshot):
    email = register(stack, "web-account")
    first = place_order(anonymous, email)
    second = place_order(anonymous, email)
    page.goto("/")
    account = page.get_by_role("form", name="Sign in to your account")
    account.get_by_label("Email").fill(email)
    account.get_by_label("Password").fill("not the password")
    account.get_by_role("button", name="Sign in").click()
    expect(account.get_by_role("alert")).to_have_text("The email or password is wrong.")

    account.get_by_label("Password").fill(PASSWORD)
    account.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your orders")
    expect(page.get_by_text("2 orders")).to_be_visible()
    rows = page.locator(".orders-table tbody tr")
    expect(rows).to_have_count(2)
    # Newest first.
    expect(rows.nth(0)).to_contain_text(second["number"])
    expect(rows.nth(1)).to_contain_text(first["number"])
    expect(rows.nth(0)).to_contain_text("PLN 129.30")
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    no_token_in_storage(page)
    axe(page, "customer-orders")
    screenshot(page, "customer-orders")

    page.get_by_role("link", name=first["number"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {first['number']}")
    expect(page).to_have_url(re.compile(rf"\?order={first['id']}$"))
    page.get_by_role("link", name="Back to your orders").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your orders")
    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {first['number']}")


def test_keyboard_alone_follows_and_cancels_an_order(page, order, client):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Track your order")
    number = page.get_by_role("form", name="Follow an order").get_by_label("Order number")
    for _ in range(10):  # skip link, brand, language, then the first field
        page.keyboard.press("Tab")
        if number.evaluate("element => element === document.activeElement"):
            break
    expect(number).to_be_focused()
    page.keyboard.type(order["number"])
    page.keyboard.press("Tab")
    page.keyboard.type(order["customer"]["email"])
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(f"Order {order['number']}")
    expect(heading).to_be_focused()  # a screen reader starts at the new screen's heading

    cancel = page.get_by_role("button", name="Cancel order")
    for _ in range(10):
        page.keyboard.press("Tab")
        if cancel.evaluate("element => element === document.activeElement"):
            break
    expect(cancel).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Keep order")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Cancel order")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".current-status")).to_have_text("Cancelled")
    expect(page.get_by_role("status").filter(has_text="Your order has been cancelled.")).to_be_focused()
    assert client.get(f"/orders/{order['id']}").json()["status"] == "cancelled"


def test_a_session_ended_elsewhere_returns_to_sign_in(page, order):
    follow(page, order["number"], order["customer"]["email"])
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {order['number']}")

    # The same browser's session ends outside this page (another tab's sign-out): the next poll
    # gets a 401, the refresh fails, and the page says so instead of showing stale data.
    ended = page.request.post("/auth/session/logout", headers={"X-Orderflow-CSRF": "1"})
    assert ended.status == 204, ended.text()
    expect(page.get_by_role("heading", level=1)).to_have_text("Track your order", timeout=LIVE_MS)
    expect(page.get_by_role("status").filter(has_text="Your session has ended.")).to_be_visible()
    expect(page.locator(".items-table")).to_have_count(0)
