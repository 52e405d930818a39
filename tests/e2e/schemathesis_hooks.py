"""schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS):
webhook calls are signed like a real sender's, so the checks reach the event validation
behind the signature instead of stopping at its 401; logins never name the bootstrap admin."""

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
from deployments.stack import DEV_ADMIN_EMAIL

WEBHOOK_SECRET = os.environ.get("ORDERFLOW_TEST_WEBHOOK_SECRET", "")


# schemathesis reuses values it saw in answers (GET /users, /me) when it generates others: with
# the admin's address its logins' wrong passwords locked the account every later test signs in
# with (the lockout doing its job).
LOGINS = {"/login", "/session"}
OTHER_ADDRESS = "not-the-admin@example.com"


@schemathesis.hook
def before_call(context, case, **kwargs):
    if (case.operation.path in LOGINS and isinstance(case.body, dict)
            and str(case.body.get("email", "")).casefold() == DEV_ADMIN_EMAIL.casefold()):
        case.body = {**case.body, "email": OTHER_ADDRESS}
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
