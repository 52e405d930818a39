"""Signed webhooks (API.md, Notification): `X-Orderflow-Signature: t=<unix>,v1=<hex>`
where v1 is HMAC-SHA256 of "<t>.<body>" with the shared secret.

Pure functions: the caller passes the clock, and records accepted signatures against
replay (see store.remember_signature; the whole flow is NotificationService.receive_webhook).
"""

import hashlib
import hmac

from pydantic import BaseModel, ValidationError

from actors.common.errors import Unauthorized, Unprocessable
from actors.common.events import OrderEvent

MAX_HEADER = 1024


class BadSignature(Unauthorized):
    slug, title = "bad-signature", "The webhook signature is not valid"


class WebhookAccepted(BaseModel):
    """The answer to an accepted webhook; `duplicate` when its event was notified before."""

    event_id: str
    notification_id: int | None
    duplicate: bool


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value a sender puts on `body` (used by senders and tests)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def parse_header(header: str | None) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) from the header; BadSignature when it is malformed."""
    if not header or len(header) > MAX_HEADER:
        raise BadSignature("Send X-Orderflow-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of \"t.body\">.")
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and len(value) == 64 and all(c in "0123456789abcdef" for c in value.lower()):
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        raise BadSignature("X-Orderflow-Signature needs a t=<unix time> and a v1=<64 hex digits> part.")
    return timestamp, signatures


def verify(secret: str, header: str | None, body: bytes, *, now: float, tolerance_s: int) -> str:
    """Check the signature; returns the matching v1 value (to record against replay).

    Refused (BadSignature, a 401): a malformed header, a timestamp further than
    `tolerance_s` from `now` either way, or no v1 that matches (compared in constant time).
    """
    timestamp, signatures = parse_header(header)
    if abs(now - timestamp) > tolerance_s:
        raise BadSignature(f"The signature's timestamp is more than {tolerance_s} seconds away from now.")
    expected = _digest(secret, timestamp, body)
    matching = [s for s in signatures if hmac.compare_digest(s, expected)]
    if not matching:
        raise BadSignature("The signature does not match the body.")
    return matching[0]


def parse_event(body: bytes) -> OrderEvent:
    """The order event of a verified body; Unprocessable (naming each error) when it is not one."""
    try:
        return OrderEvent.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Unprocessable("The body is not an order event (API.md, Events); see `errors`.",
                            errors=errors) from None
