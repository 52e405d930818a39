"""What `orderflow run` makes up for a local run reaches the replicas that read it, not
through its own environment: its URLs through the config it deploys (links in mails and
notifications lead to this stack's gateway), the webhook secret through the environment of
Ray's processes (events signed with the secret in the run directory are taken), and that
secret is in no file but its own (Ray's runtime_env agent logs the config's env_vars)."""

import email
import email.policy
import re
import time
import uuid

import httpx
import pytest

from actors.common.events import ORDER_CREATED, OrderEvent, OrderEventData
from actors.notification.webhook import sign
from tests.e2e.desktop import wait_for

pytestmark = pytest.mark.e2e


def mailed_link(stack, address: str) -> str | None:
    for path in (stack.settings.run_dir / "mail").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address and (found := re.search(r"\S+/verify-email\?token=\S+", message.get_content())):
            return found.group(0)
    return None


def test_a_mailed_link_leads_to_this_stacks_gateway(stack):
    address = f"link-{uuid.uuid4().hex[:8]}@example.com"
    registered = httpx.post(f"{stack.url}/auth/register", timeout=10,
                            json={"email": address, "password": "a long enough password", "name": "Link"})
    assert registered.status_code == 202, registered.text
    link = wait_for(lambda: mailed_link(stack, address), f"the verification mail to {address}", timeout_s=30)
    assert link.startswith(f"{stack.url}/verify-email?token=")


def test_the_webhook_takes_the_generated_secret_and_links_to_this_gateway(stack, client):
    secret = (stack.settings.run_dir / "webhook-secret").read_text().strip()
    event = OrderEvent.new(ORDER_CREATED, OrderEventData(
        order_id=uuid.uuid4(), number="ORD-2026-990001", status="new", previous_status=None,
        customer_email="webhook@example.com", total="12.50", currency="PLN", items_count=1))
    body = event.model_dump_json().encode()

    def post(key: str) -> httpx.Response:
        return client.post("/notifications/webhooks/orders", content=body, headers={
            "Content-Type": "application/json", "X-Orderflow-Signature": sign(key, int(time.time()), body)})

    assert post("not-the-secret").status_code == 401
    accepted = post(secret)
    assert accepted.status_code == 202, accepted.text
    notification_id = accepted.json()["notification_id"]
    [shown] = [n for n in client.get("/notifications", params={"after": notification_id - 1}).json()["items"]
               if n["id"] == notification_id]
    assert shown["url"] == f"{stack.url}/admin/orders/{event.data.order_id}"


def test_the_generated_secret_is_in_no_log(stack):
    secret = (stack.settings.run_dir / "webhook-secret").read_text().strip().encode()
    files = [path for root in (stack.settings.ray_temp_dir, stack.settings.run_dir) for path in root.rglob("*")
             if path.is_file() and not path.is_symlink() and path.name != "webhook-secret"]
    assert files
    assert [path for path in files if secret in path.read_bytes()] == []
