"""Webhook signatures: HMAC-SHA256 over "t.body", a five-minute window, malformed headers
refused."""

import hashlib
import hmac

import pytest

from actors.common.errors import Forbidden, Unauthorized, Unprocessable
from actors.notification.service import NotificationService
from actors.notification.webhook import BadSignature, parse_event, parse_header, sign, verify

SECRET = "s3cret"
BODY = b'{"id": "1"}'
NOW = 1_800_000_000


def test_a_signature_made_with_the_secret_verifies():
    header = sign(SECRET, NOW, BODY)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify(SECRET, header, BODY, now=NOW, tolerance_s=300) == expected


@pytest.mark.parametrize("skew", [-300, 300, 0, 299])
def test_timestamps_within_the_window_are_accepted(skew):
    assert verify(SECRET, sign(SECRET, NOW + skew, BODY), BODY, now=NOW, tolerance_s=300)


@pytest.mark.parametrize("skew", [-301, 301, -86400])
def test_timestamps_outside_the_window_are_refused(skew):
    with pytest.raises(BadSignature, match="seconds away"):
        verify(SECRET, sign(SECRET, NOW + skew, BODY), BODY, now=NOW, tolerance_s=300)


@pytest.mark.parametrize("header", [
    sign("other", NOW, BODY),
    sign(SECRET, NOW, BODY + b" "),
    sign(SECRET, NOW + 1, BODY).replace(f"t={NOW + 1}", f"t={NOW}"),  # timestamp swapped
])
def test_a_signature_that_does_not_match_is_refused(header):
    with pytest.raises(BadSignature, match="does not match"):
        verify(SECRET, header, BODY, now=NOW, tolerance_s=300)


def test_one_matching_signature_among_several_is_enough():
    good = sign(SECRET, NOW, BODY).split(",v1=")[1]
    header = f"t={NOW},v1={'0' * 64},v1={good}"
    assert verify(SECRET, header, BODY, now=NOW, tolerance_s=300) == good


@pytest.mark.parametrize("header", [None, "", "t=1", "v1=" + "a" * 64, f"t=abc,v1={'a' * 64}",
                                    f"t=-5,v1={'a' * 64}", f"t={NOW},v1=xyz", f"t={NOW},v1={'g' * 64}",
                                    f"t=¹²³,v1={'a' * 64}", "x" * 2000, f"t={'9' * 40},v1={'a' * 64}"])
def test_malformed_headers_are_refused(header):
    with pytest.raises(BadSignature) as refused:
        parse_header(header)
    assert isinstance(refused.value, Unauthorized)  # a 401 at the edge
    assert refused.value.body()["type"] == "urn:orderflow:problem:bad-signature"


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"type": "order.deleted"}'])
def test_a_body_that_is_not_an_order_event_is_unprocessable_and_says_why(body):
    with pytest.raises(Unprocessable) as refused:
        parse_event(body)
    errors = refused.value.extra["errors"]
    assert errors and all(set(e) == {"loc", "msg", "type"} for e in errors)


def test_an_event_without_an_id_is_unprocessable_at_the_id():
    with pytest.raises(Unprocessable) as refused:
        parse_event(b'{"type": "order.created"}')
    assert ["id"] in [e["loc"] for e in refused.value.extra["errors"]]


def webhooks(secret: str) -> NotificationService:
    """The service before it touches its log: every refusal comes first."""
    return NotificationService(None, language="en", public_url="http://shop.test", timeout_s=5,
                               webhook_secret=secret, webhook_tolerance_s=300)


async def test_without_a_secret_webhooks_are_refused_whatever_they_carry():
    with pytest.raises(Forbidden, match="NOTIFY_WEBHOOK_SECRET"):
        await webhooks("").receive_webhook(BODY, sign("", NOW, BODY), now=NOW)


async def test_a_webhook_is_verified_before_its_body_is_read():
    with pytest.raises(BadSignature):
        await webhooks(SECRET).receive_webhook(b"{not json", sign("other", NOW, b"{not json"), now=NOW)
    with pytest.raises(Unprocessable):
        await webhooks(SECRET).receive_webhook(b"{not json", sign(SECRET, NOW, b"{not json"), now=NOW)
