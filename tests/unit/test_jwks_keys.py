"""The public keys a service checks tokens with, fetched from the auth service's JWKS over real
HTTP (a loopback server): a token is refused (401) only when the auth service's current keys
do not have its key, never because they could not be fetched (503, the token may be valid),
also while a refetch waits out retry_failed_s after a failure, or when the request that
started the fetch went away: the node-loss test saw valid tokens refused by a new orders
replica, first while auth was being rescheduled, then when the request whose fetch the others
waited on was cancelled halfway."""

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.auth.keys import SigningKeys
from actors.common.errors import ServiceUnavailable
from actors.common.security import JwksKeySource
from deployments.stack import free_port

REFETCH_S = 0.2


class JwksServer:
    """The auth service's /.well-known/jwks.json on `port`, counting the fetches; with
    `hold`, each answer waits until `release` is set (a fetch under way)."""

    def __init__(self, port: int, jwks: dict, hold: bool = False):
        served = self
        self.fetches = 0
        self.arrived, self.release = threading.Event(), threading.Event()
        if not hold:
            self.release.set()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                served.fetches += 1
                served.arrived.set()
                served.release.wait(10)
                body = json.dumps(jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def signing_keys():
    return SigningKeys(Ed25519PrivateKey.generate(), [])


@pytest.fixture
def port():
    return free_port()


async def test_keys_that_cannot_be_fetched_give_503_until_they_can(signing_keys, port):
    """After a failed fetch the next is tried after retry_failed_s, not min_refetch_s: a
    replica started while auth was away has the keys soon after auth is back."""
    keys = JwksKeySource(f"http://127.0.0.1:{port}/.well-known/jwks.json",
                         min_refetch_s=60, retry_failed_s=REFETCH_S)
    with pytest.raises(ServiceUnavailable):
        await keys.get(signing_keys.kid)  # nothing listens: the fetch fails
    with pytest.raises(ServiceUnavailable):
        await keys.get(signing_keys.kid)  # within retry_failed_s: no fetch, still not a refusal

    server = JwksServer(port, signing_keys.jwks)
    try:
        await asyncio.sleep(REFETCH_S)
        key = await keys.get(signing_keys.kid)
        assert key is not None and key.key_id == signing_keys.kid
    finally:
        server.stop()


async def test_a_key_the_auth_service_does_not_have_is_unknown(signing_keys, port):
    server = JwksServer(port, signing_keys.jwks)
    try:
        keys = JwksKeySource(f"http://127.0.0.1:{port}/.well-known/jwks.json", min_refetch_s=REFETCH_S)
        assert await keys.get("forged-kid") is None
        assert await keys.get("forged-kid") is None  # rate-limited: no second fetch
        assert server.fetches == 1
        assert (await keys.get(signing_keys.kid)).key_id == signing_keys.kid
    finally:
        server.stop()


async def test_an_unknown_key_while_the_auth_service_is_down_is_not_refused(signing_keys, port):
    server = JwksServer(port, signing_keys.jwks)
    keys = JwksKeySource(f"http://127.0.0.1:{port}/.well-known/jwks.json", min_refetch_s=REFETCH_S)
    assert await keys.get(signing_keys.kid) is not None
    server.stop()
    # The auth service rotated its key while it was away: a token signed with the new one
    # cannot be checked yet, so it is not refused.
    rotated = SigningKeys(Ed25519PrivateKey.generate(), [])
    await asyncio.sleep(REFETCH_S)
    with pytest.raises(ServiceUnavailable):
        await keys.get(rotated.kid)
    assert await keys.get(signing_keys.kid) is not None  # known keys still check tokens


async def test_a_request_that_goes_away_mid_fetch_leaves_the_fetch_to_the_others(signing_keys, port):
    """A new replica's first requests all wait on one fetch; Serve cancels the one that started
    it when its client goes away: the others still get the key, from the same fetch."""
    server = JwksServer(port, signing_keys.jwks, hold=True)
    try:
        keys = JwksKeySource(f"http://127.0.0.1:{port}/.well-known/jwks.json")
        first = asyncio.create_task(keys.get(signing_keys.kid))
        assert await asyncio.to_thread(server.arrived.wait, 10)
        second = asyncio.create_task(keys.get(signing_keys.kid))
        await asyncio.sleep(0.05)  # the second waits on the fetch under way
        first.cancel()
        server.release.set()
        assert (await second).key_id == signing_keys.kid
        with pytest.raises(asyncio.CancelledError):
            await first
        assert server.fetches == 1
    finally:
        server.stop()
