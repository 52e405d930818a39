"""The CSRF rule of the browser's session (actors/auth/browser.py), without HTTP."""

import pytest

from actors.auth.browser import CrossSiteRequest, check_same_origin


@pytest.mark.parametrize(("origin", "scheme", "host"), [
    (None, "http", "localhost:8088"),  # no Origin (an older browser, a same-origin GET): the header is enough
    ("http://localhost:8088", "http", "localhost:8088"),
    ("https://shop.example.com", "https", "shop.example.com:443"),
    ("http://Shop.Example.com", "http", "shop.example.com"),
    ("http://[::1]:8088", "http", "[::1]:8088"),
])
def test_our_own_origin_passes(origin, scheme, host):
    check_same_origin("1", origin, scheme, host)


@pytest.mark.parametrize(("csrf", "origin", "scheme", "host"), [
    (None, None, "http", "localhost:8088"),
    ("0", None, "http", "localhost:8088"),
    ("1", "http://evil.example", "http", "localhost:8088"),
    ("1", "http://localhost:8089", "http", "localhost:8088"),
    ("1", "http://localhost", "http", "localhost:8088"),
    ("1", "https://localhost:8088", "http", "localhost:8088"),
    ("1", "null", "http", "localhost:8088"),
    ("1", "http://localhost:8088", "http", None),
    ("1", "http://localhost:8088", "http", "localhost:notaport"),
    ("1", "ftp://localhost", "ftp", "localhost"),
])
def test_anything_else_is_a_cross_site_request(csrf, origin, scheme, host):
    with pytest.raises(CrossSiteRequest) as refused:
        check_same_origin(csrf, origin, scheme, host)
    assert refused.value.body()["type"] == "urn:orderflow:problem:csrf"
