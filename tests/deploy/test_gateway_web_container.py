"""The gateway as the image runs it, serving the web clients: the image's own settings (the
build's web/dist copied where ORDERFLOW_WEB_ROOT points, no TLS port), and the real nginx with
the container's config over a small stand-in for web/dist (the real build is served in
tests/e2e/test_gateway_web.py), or over none at all."""

import os
import re
import ssl
import tempfile
from pathlib import Path

import httpx
import pytest

from deployments.stack import ROOT, StackSettings, free_port
from tests.deploy.support import container_gateway

PAGE_CSP_PARTS = {"script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'",
                  "connect-src 'self'", "form-action 'self'"}


def image_environment() -> dict[str, str]:
    runtime = (ROOT / "Dockerfile").read_text().split("AS runtime", 1)[1]
    block = re.search(r"^ENV (.*?)(?:\n(?!\s))", runtime, re.MULTILINE | re.DOTALL).group(1)
    return dict(re.findall(r"(\w+)=(\S*)", block))


def test_the_image_serves_the_web_build_and_leaves_tls_to_the_load_balancer(monkeypatch):
    environment = image_environment()
    text = (ROOT / "Dockerfile").read_text()
    assert "RUN npm ci" in text and "RUN npm run build" in text  # from the lockfile, as `make web`
    assert f"COPY --from=web /web/dist {environment['ORDERFLOW_WEB_ROOT']}" in text
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = StackSettings()
    assert settings.gateway_tls_port is None and str(settings.web_root) == "/usr/share/orderflow/web"


@pytest.fixture
def web_root():
    # Outside pytest's private tmp_path: nginx's workers run as `nobody` under root.
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        yield make_dist(Path(directory) / "dist")


def make_dist(root: Path) -> Path:
    (root / "admin").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "index.html").write_text('<!doctype html><title>customer</title><script type="module" src="/assets/customer-1a2b.js"></script>')
    (root / "admin" / "index.html").write_text("<!doctype html><title>admin</title>")
    (root / "assets" / "customer-1a2b.js").write_text("console.log('orderflow');\n" * 200)
    return root


def gateway_stack(tmp_path, web_root) -> StackSettings:
    return StackSettings(run_dir=tmp_path / "run", gateway_host="127.0.0.1", gateway_port=free_port(),
                         gateway_tls_port=None, serve_host="127.0.0.1", serve_port=free_port(), web_root=web_root)


def test_pages_assets_and_unknown_paths(tmp_path, web_root):
    stack = gateway_stack(tmp_path, web_root)
    with container_gateway(stack), httpx.Client(base_url=stack.gateway_url) as client:
        for path, title in {"/": "customer", "/admin/": "admin", "/admin/orders/0f8e": "admin",
                            "/admin/analytics/": "admin"}.items():
            page = client.get(path)
            assert page.status_code == 200 and f"<title>{title}</title>" in page.text, path
            assert page.headers["content-type"] == "text/html" and page.headers["cache-control"] == "no-cache"
            assert PAGE_CSP_PARTS <= {part.strip() for part in page.headers["content-security-policy"].split(";")}
            assert page.headers["referrer-policy"] == "same-origin"
            assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
        redirect = client.get("/admin")
        assert (redirect.status_code, redirect.headers["location"]) == (301, "/admin/")

        asset = client.get("/assets/customer-1a2b.js", headers={"Accept-Encoding": "gzip"})
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["content-type"] == "application/javascript"
        assert asset.headers["content-encoding"] == "gzip" and asset.headers["vary"] == "Accept-Encoding"
        sent = (web_root / "assets" / "customer-1a2b.js").read_bytes()
        assert asset.content == sent and asset.num_bytes_downloaded < len(sent) / 4  # httpx decoded it

        for path in ("/assets/missing.js", "/index.html", "/nothing", "/favicon.ico"):
            missing = client.get(path)
            assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json", path
            assert "cache-control" not in missing.headers, path  # a 404 is not kept for a year
            assert missing.headers["content-security-policy"] == "frame-ancestors 'none'", path
        wrong = client.post("/", content=b"x")
        assert (wrong.status_code, wrong.headers["content-type"], wrong.headers["allow"]) == (
            405, "application/problem+json", "GET, HEAD")


def test_without_a_web_build_the_pages_say_how_to_make_one(tmp_path):
    stack = gateway_stack(tmp_path, tmp_path / "not-built")
    with container_gateway(stack), httpx.Client(base_url=stack.gateway_url) as client:
        for path in ("/", "/admin/", "/admin/orders/0f8e"):
            answer = client.get(path)
            assert answer.status_code == 503 and answer.headers["content-type"] == "application/problem+json", path
            assert answer.json()["detail"] == "The web clients are not built: run make web."
        assert client.get("/gateway/health").status_code == 200


def test_the_tls_port_serves_the_development_certificate(tmp_path, web_root):
    stack = gateway_stack(tmp_path, web_root).model_copy(update={"gateway_tls_port": free_port()})
    with container_gateway(stack):
        certificate = stack.run_dir / "tls" / "gateway-dev.crt"  # made by the renderer
        with httpx.Client(verify=ssl.create_default_context(cafile=certificate)) as client:
            page = client.get(f"https://localhost:{stack.gateway_tls_port}/")
            assert page.status_code == 200 and page.headers["strict-transport-security"] == "max-age=31536000"
        assert "strict-transport-security" not in httpx.get(f"{stack.gateway_url}/").headers
