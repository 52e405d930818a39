"""Customer accounts over HTTP and real SMTP: registration that tells nobody whether an
address has an account, proving the address with a mailed link before its orders become
the account's, claiming one order with its number, password reset, and mail that waits for
a stopped SMTP server."""

import asyncio

from tests.factories import PASSWORD, new_order, unique_email
from tests.integration.accounts_support import PUBLIC_URL, bearer, world  # noqa: F401 (fixture)
from tests.support import wait_until


async def test_register_answers_the_same_whether_or_not_the_address_has_an_account(world):
    address = unique_email("taken")
    first = await world.register(address, name="Owner")
    second = await world.register(address.upper(), name="Intruder", password="another long password")
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert first.headers["content-type"] == second.headers["content-type"]

    welcome, notice = await world.mail_to(address, 2)
    assert welcome["Subject"] == "Confirm your e-mail address for Orderflow"
    assert f"{PUBLIC_URL}/verify-email?token=" in welcome.get_content()
    assert notice["Subject"] == "Someone tried to register with your address"
    assert "token=" not in notice.get_content()
    # The account is as the first registration made it.
    assert (await world.http.post("/auth/login", json={"email": address,
                                                       "password": "another long password"})).status_code == 401
    me = await world.http.get("/auth/me", headers=bearer(await world.login(address)))
    assert me.json()["name"] == "Owner" and me.json()["email_verified"] is False


async def test_registering_someone_elses_address_does_not_open_their_orders(world):
    """The attack of issue 10, item 1: register the victim's address, then read and cancel
    their guest order."""
    victim = unique_email("victim")
    order, _ = await world.orders.create(new_order(victim), by="guest")
    assert (await world.register(victim, name="Attacker")).status_code == 202
    attacker = bearer(await world.login(victim))

    listed = await world.http.get("/orders", headers=attacker)
    assert listed.status_code == 200 and listed.json()["items"] == []
    for method, path in [("GET", f"/orders/{order.id}"), ("GET", f"/orders/by-number/{order.number}"),
                         ("GET", f"/orders/{order.id}/history"), ("POST", f"/orders/{order.id}/cancel")]:
        response = await world.http.request(method, path, headers=attacker)
        assert response.status_code == 404, (method, path, response.text)
    assert (await world.orders.get(order.id)).status == "new"


async def test_a_verified_address_brings_its_orders_and_a_refresh_carries_the_proof(world):
    address = unique_email("buyer")
    order, _ = await world.orders.create(new_order(address), by="guest")
    assert (await world.register(address)).status_code == 202
    before = await world.login(address)
    assert (await world.http.get("/orders", headers=bearer(before))).json()["items"] == []

    verified = await world.http.post("/auth/verify-email", json={"token": await world.link_token(address)})
    assert verified.status_code == 200
    assert verified.json() == {"email": address, "email_verified": True}

    renewed = (await world.http.post("/auth/refresh", json={"refresh_token": before["refresh_token"]})).json()
    for pair in (renewed, await world.login(address)):
        listed = await world.http.get("/orders", headers=bearer(pair))
        assert [o["id"] for o in listed.json()["items"]] == [str(order.id)]
        assert (await world.http.get(f"/orders/{order.id}", headers=bearer(pair))).status_code == 200
    me = await world.http.get("/auth/me", headers=bearer(renewed))
    assert me.json()["email_verified"] is True


async def test_claiming_an_order_shows_that_order_and_no_other(world):
    guest_email = unique_email("guest")
    claimed, _ = await world.orders.create(new_order(guest_email), by="guest")
    other, _ = await world.orders.create(new_order(guest_email), by="guest")
    account = unique_email("account")
    assert (await world.register(account)).status_code == 202
    token = bearer(await world.login(account))

    wrong = await world.http.post("/auth/claim-order", json={"order_number": claimed.number,
                                                             "email": unique_email("wrong")}, headers=token)
    login_refused = await world.http.post("/auth/login", json={"order_number": claimed.number,
                                                               "email": unique_email("wrong")})
    assert wrong.status_code == login_refused.status_code == 401
    assert wrong.json()["detail"] == login_refused.json()["detail"]
    anonymous = await world.http.post("/auth/claim-order", json={"order_number": claimed.number,
                                                                 "email": guest_email})
    assert anonymous.status_code == 401

    ok = await world.http.post("/auth/claim-order", json={"order_number": claimed.number, "email": guest_email},
                               headers=token)
    assert ok.status_code == 200 and ok.json() == {"order_id": str(claimed.id), "order_number": claimed.number}
    listed = await world.http.get("/orders", headers=token)
    assert [o["id"] for o in listed.json()["items"]] == [str(claimed.id)]
    assert (await world.http.get(f"/orders/{claimed.id}", headers=token)).status_code == 200
    assert (await world.http.get(f"/orders/{other.id}", headers=token)).status_code == 404
    cancelled = await world.http.post(f"/orders/{claimed.id}/cancel", headers=token)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    order_login = await world.http.post("/auth/login", json={"order_number": other.number, "email": guest_email})
    by_number = await world.http.post("/auth/claim-order", json={"order_number": other.number, "email": guest_email},
                                      headers=bearer(order_login.json()))
    assert by_number.status_code == 403  # an order-number login has no account to claim for


async def test_verification_links_work_once_and_expire(world):
    address = unique_email("once")
    assert (await world.register(address)).status_code == 202
    token = await world.link_token(address)
    assert (await world.http.post("/auth/verify-email", json={"token": token})).status_code == 200
    again = await world.http.post("/auth/verify-email", json={"token": token})
    made_up = await world.http.post("/auth/verify-email", json={"token": "x" * 43})
    assert again.status_code == made_up.status_code == 400
    assert again.json() == made_up.json()
    assert again.headers["content-type"].startswith("application/problem+json")

    late = unique_email("late")
    assert (await world.register(late)).status_code == 202
    late_token = await world.link_token(late)
    await world.auth.pool.execute("UPDATE email_tokens SET expires_at = now() - interval '1 second'")
    expired = await world.http.post("/auth/verify-email", json={"token": late_token})
    assert expired.status_code == 400 and expired.json()["type"] == again.json()["type"]
    me = await world.http.get("/auth/me", headers=bearer(await world.login(late)))
    assert me.json()["email_verified"] is False


async def test_password_reset_replaces_the_password_and_ends_every_session(world):
    address = unique_email("forgetful")
    assert (await world.register(address)).status_code == 202
    old = await world.login(address)
    nobody = unique_email("nobody")
    asked = await world.http.post("/auth/password-reset", json={"email": address})
    asked_for_nobody = await world.http.post("/auth/password-reset", json={"email": nobody})
    assert asked.status_code == asked_for_nobody.status_code == 202
    assert asked.json() == asked_for_nobody.json()

    token = await world.link_token(address, 2)  # after the verification mail
    assert (await world.mail_to(address, 2))[1]["Subject"] == "Reset your Orderflow password"
    weak = await world.http.post("/auth/password-reset/confirm", json={"token": token, "password": "short"})
    assert weak.status_code == 422
    new_password = "a brand new passphrase"
    done = await world.http.post("/auth/password-reset/confirm", json={"token": token, "password": new_password})
    assert done.status_code == 204
    again = await world.http.post("/auth/password-reset/confirm", json={"token": token, "password": new_password})
    assert again.status_code == 400

    assert (await world.http.post("/auth/login", json={"email": address, "password": PASSWORD})).status_code == 401
    await world.login(address, new_password)
    assert (await world.http.get("/auth/me", headers=bearer(old))).status_code == 401
    assert (await world.http.get("/orders", headers=bearer(old))).status_code == 401
    assert (await world.http.post("/auth/refresh", json={"refresh_token": old["refresh_token"]})).status_code == 401
    assert world.sink.to(nobody) == []

    await world.http.post("/auth/password-reset", json={"email": address})
    expired_token = await world.link_token(address, 3)
    await world.auth.pool.execute("UPDATE email_tokens SET expires_at = now() - interval '1 second'")
    expired = await world.http.post("/auth/password-reset/confirm",
                                    json={"token": expired_token, "password": "yet another passphrase"})
    assert expired.status_code == 400


async def test_mail_waits_while_the_smtp_server_is_down(world):
    world.sink.stop()
    address = unique_email("patient")
    assert (await world.register(address)).status_code == 202

    async def failed_once() -> bool:
        return bool(await world.auth.pool.fetchval("SELECT max(attempts) FROM mail_outbox"))

    await wait_until(failed_once, timeout_s=15, what="a failed attempt to send")
    assert world.sink.to(address) == []
    ready = await world.http.get("/auth/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["smtp"]["status"] == "degraded"
    world.sink.start()
    token = await world.link_token(address)
    assert (await world.http.post("/auth/verify-email", json={"token": token})).status_code == 200
    await wait_until(lambda: world.auth.pool.fetchval("SELECT count(*) = 0 FROM mail_outbox"), what="empty outbox")
    ready = (await world.http.get("/auth/ready")).json()
    assert ready["checks"]["smtp"] == {"status": "ok", "required": False, "mail_waiting": 0}


async def test_someone_elses_order_and_a_missing_one_get_one_404(world):
    """Issue 10, item 3: the answer must not tell an existing number from a missing one,
    nor name an internal id."""
    theirs, _ = await world.orders.create(new_order(unique_email("them")), by="guest")
    address = unique_email("prober")
    customer = bearer(await world.verified_account(address))
    answers = {}
    for what, path in {
        "their number": f"/orders/by-number/{theirs.number}",
        "a missing number": "/orders/by-number/ORD-2026-999999999",
        "their id": f"/orders/{theirs.id}",
        "a missing id": "/orders/00000000-0000-4000-8000-000000000000",
        "not an id": "/orders/not-an-id",
        "their history": f"/orders/{theirs.id}/history",
    }.items():
        response = await world.http.get(path, headers=customer)
        assert response.status_code == 404, (what, response.text)
        body = response.json()
        assert str(theirs.id) not in body["detail"] + body["title"], what  # `instance` is the path asked
        answers[what] = (body["type"], body["title"], body["detail"])
    assert len(set(answers.values())) == 1, answers


async def test_token_responses_are_never_cached(world):
    """Issue 10, item 8: every answer that carries tokens says no-store."""
    address = unique_email("cache")
    await world.verified_account(address)
    order, _ = await world.orders.create(new_order(address), by="guest")
    responses = {
        "password login": await world.http.post("/auth/login", json={"email": address, "password": PASSWORD}),
        "order-number login": await world.http.post("/auth/login", json={"order_number": order.number,
                                                                         "email": address}),
    }
    responses["refresh"] = await world.http.post(
        "/auth/refresh", json={"refresh_token": responses["password login"].json()["refresh_token"]})
    for what, response in responses.items():
        assert response.status_code == 200, what
        assert response.headers.get("cache-control") == "no-store", what
        assert response.headers.get("pragma") == "no-cache", what


async def test_nobody_can_flood_a_mailbox_through_register_and_reset(world):
    address = unique_email("flooded")
    for _ in range(4):
        assert (await world.register(address)).status_code == 202
        assert (await world.http.post("/auth/password-reset", json={"email": address})).status_code == 202
    await wait_until(lambda: world.auth.pool.fetchval("SELECT count(*) = 0 FROM mail_outbox"), what="empty outbox")
    assert len(world.sink.to(address)) == world.auth.settings.mail_per_address == 5


async def test_a_password_reset_ends_every_other_reset_link(world):
    """Someone who once read the mailbox (or a leaked link) must not keep a way in after the
    owner chose a new password: every reset link sent before is dead from then on."""
    address = unique_email("recovered")
    assert (await world.register(address)).status_code == 202
    for _ in range(2):
        assert (await world.http.post("/auth/password-reset", json={"email": address})).status_code == 202
    earlier, latest = await world.link_token(address, 2), await world.link_token(address, 3)
    done = await world.http.post("/auth/password-reset/confirm",
                                 json={"token": latest, "password": "the owner's new one"})
    assert done.status_code == 204
    stale = await world.http.post("/auth/password-reset/confirm",
                                  json={"token": earlier, "password": "a thief's choice!"})
    assert stale.status_code == 400 and stale.json()["type"].endswith("invalid-link")
    await world.login(address, "the owner's new one")


def refuse_for_now(sink, address: str, times: float, reply: str = "451 4.7.1 Try again later") -> list[str]:
    """The sink answers RCPT for `address` with 451 (greylisting, a full mailbox: "try again
    later", RFC 5321 4yz), or `reply`, `times` times; the list records each refusal."""
    refused = []

    async def handle_RCPT(server, session, envelope, recipient, rcpt_options):  # aiosmtpd's hook
        if recipient.casefold() == address.casefold() and len(refused) < times:
            refused.append(recipient)
            return reply
        envelope.rcpt_tos.append(recipient)
        return "250 OK"

    sink.handle_RCPT = handle_RCPT
    return refused


async def test_a_recipient_refused_for_now_gets_the_mail_later(world):
    address = unique_email("greylisted")
    refused = refuse_for_now(world.sink, address, times=2)
    assert (await world.register(address)).status_code == 202
    await world.mail_to(address)
    assert len(refused) == 2


async def test_a_recipient_refused_for_now_does_not_hold_up_other_mail(world):
    stuck = unique_email("mailbox-full")
    refuse_for_now(world.sink, stuck, times=float("inf"))
    assert (await world.register(stuck)).status_code == 202
    await wait_until(lambda: world.auth.pool.fetchval("SELECT max(attempts) > 0 FROM mail_outbox"),
                     what="a refused attempt")
    later = unique_email("later")
    assert (await world.register(later)).status_code == 202
    await world.mail_to(later)
    assert await world.auth.pool.fetchval("SELECT count(*) FROM mail_outbox WHERE recipient = $1", stuck) == 1


async def test_one_link_used_twice_at_once_works_once(world):
    address = unique_email("twice")
    assert (await world.register(address)).status_code == 202
    verify = {"json": {"token": await world.link_token(address)}}
    assert (await world.http.post("/auth/password-reset", json={"email": address})).status_code == 202
    reset = {"json": {"token": await world.link_token(address, 2), "password": "chosen at the same time"}}
    answers = await asyncio.gather(*(world.http.post(path, **body) for path, body in [
        ("/auth/verify-email", verify), ("/auth/verify-email", verify),
        ("/auth/password-reset/confirm", reset), ("/auth/password-reset/confirm", reset)]))
    assert sorted(a.status_code for a in answers[:2]) == [200, 400]
    assert sorted(a.status_code for a in answers[2:]) == [204, 400]


async def test_a_reset_request_is_answered_before_the_work_that_depends_on_the_account(world):
    """Issue 10, item 1 (no enumeration): for an address with an account a reset request also
    stored a link and queued a mail before answering, for an unknown one it answered at once
    (10 ms against 7 ms here): the time told. The answer no longer waits for either: with the
    link table locked, a request for an existing account is still answered, and its mail
    goes out once the lock is gone."""
    address = unique_email("timed")
    await world.verified_account(address)
    async with world.auth.pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("LOCK TABLE email_tokens IN ACCESS EXCLUSIVE MODE")
            answer = await world.http.post("/auth/password-reset", json={"email": address}, timeout=5)
            assert answer.status_code == 202
            assert len(world.sink.to(address)) == 1  # the verification mail only, so far
    assert (await world.mail_to(address, 2))[1]["Subject"] == "Reset your Orderflow password"


async def test_a_recipient_refused_for_good_is_dropped_once(world):
    gone = unique_email("no-such-mailbox")
    refused = refuse_for_now(world.sink, gone, times=float("inf"), reply="550 5.1.1 No such user")
    assert (await world.register(gone)).status_code == 202
    after = unique_email("after")
    assert (await world.register(after)).status_code == 202
    await world.mail_to(after)
    await wait_until(lambda: world.auth.pool.fetchval("SELECT count(*) = 0 FROM mail_outbox"), what="empty outbox")
    assert len(refused) == 1 and world.sink.to(gone) == []
