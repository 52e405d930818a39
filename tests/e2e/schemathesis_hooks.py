"""schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS):
webhook calls are signed like a real sender's, so the checks reach the event validation
behind the signature instead of stopping at its 401."""

import json
import os
import time

import schemathesis
from schemathesis.core import NotSet

from actors.notification.webhook import sign

WEBHOOK_SECRET = os.environ.get("ORDERFLOW_TEST_WEBHOOK_SECRET", "")


@schemathesis.hook
def before_call(context, case, **kwargs):
    if not WEBHOOK_SECRET or case.operation.path != "/webhooks/orders":
        return
    body = case.body
    if isinstance(body, NotSet):  # a case without a body sends none
        body = b""
    elif not isinstance(body, bytes):
        # Sent as these very bytes (schemathesis passes bytes through), so the signature holds.
        body = json.dumps(body).encode()
        case.body = body
    case.headers = {**(case.headers or {}), "X-Orderflow-Signature": sign(WEBHOOK_SECRET, int(time.time()), body)}
