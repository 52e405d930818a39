"""schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS):
webhook calls are signed like a real sender's, so the checks reach the event validation
behind the signature instead of stopping at its 401."""

import json
import os
import time

import schemathesis
from schemathesis.core import NotSet

# Imported here, on the main thread, not first by one of the run's workers: anyio compiles
# its own source when imported, and CPython 3.11's compiler is not safe to enter from two
# threads at once ("SystemError: AST constructor recursion depth mismatch" in a CI run).
import schemathesis.transport.asgi  # noqa: F401  isort: skip

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
