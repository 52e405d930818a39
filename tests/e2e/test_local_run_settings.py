"""What `orderflow run` makes up for a local run reaches the replicas that read it, not
through its own environment: its URLs through the config it deploys (links in mails and
notifications lead to this stack's gateway), the webhook secret as the path of its file in the
run directory (events signed with that secret are taken), and that secret is in no file but
its own (Ray's runtime_env agent logs the config's env_vars)."""

import time

import httpx
import pytest

from actors.notification.webhook import sign
from tests.e2e.support import mail_match
from tests.factories import PASSWORD, order_event, unique_email
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def test_a_mailed_link_leads_to_this_stacks_gateway(stack):
    address = unique_email("link")
    registered = httpx.post(f"{stack.url}/auth/register", timeout=10,
                            json={"email": address, "password": PASSWORD, "name": "Link"})
    assert registered.status_code == 202, registered.text
    link = wait_for(lambda: mail_match(stack, address, r"\S+/verify-email\?token=\S+"),
                    f"the verification mail to {address}", timeout_s=30).group(0)
    assert link.startswith(f"{stack.url}/verify-email?token=")


def test_the_webhook_takes_the_generated_secret_and_links_to_this_gateway(stack, client):
    secret = (stack.settings.run_dir / "webhook-secret").read_text().strip()
    event = order_event(number="ORD-2026-990001", email="webhook@example.com", total="12.50", items=1)
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
