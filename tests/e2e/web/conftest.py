"""Browser tests of the web clients: Playwright (sync API) driving Debian's /usr/bin/chromium
against the e2e stack's gateway (tests/e2e/conftest.py `stack`), which serves web/dist/.

- `page`: a fresh browser context and page on the gateway; the test fails on any console error
  or uncaught page error (see `ConsoleErrors` for the one kind of message that is not one).
- `axe(page, name)`: an axe-core scan (web/node_modules/axe-core, injected as a file) that fails
  on serious or critical violations.
- `screenshot(page, name)`: test-output/<name>.png, a full-page screenshot to look at.
"""

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.e2e.conftest import OUTPUT, ROOT

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
# As the machine's Chromium needs them here: no sandbox (root), and no background traffic the
# closed network would refuse (each refusal is a console error).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Chromium reports every fetch answered 4xx as "Failed to load resource"; for an API path that
# is the page's own expected outcome (signed out on load, wrong credentials), handled by the
# page. A 5xx, or a 4xx of a page, script or style, still fails the test.
API_PATH = re.compile(r"^https?://[^/]+/(auth|orders|notifications|analytics)(/|\?|$)")
API_CLIENT_ERROR = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d\b")

# Slow enough to see a poll come round; every wait below is a bound, not a measurement.
TIMEOUT_MS = 15_000


@pytest.fixture(scope="package")
def browser(stack) -> Browser:
    # After the stack (so closed before it), and only for this package: while Playwright's sync
    # API holds its event loop in this thread, neither the stack's clean-up (asyncio.run) nor
    # any async test after these (pytest-asyncio) can run.
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: deployments/system-packages.sh test installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ConsoleErrors:
    """Console errors and uncaught exceptions of one page."""

    def __init__(self, page: Page):
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if API_CLIENT_ERROR.match(message.text) and API_PATH.match(url):
            return
        self.errors.append(f"console error: {message.text} ({url})")


def new_page(browser: Browser, base_url: str, *, locale: str = "en-GB") -> tuple[Page, ConsoleErrors]:
    context = browser.new_context(base_url=base_url, locale=locale, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    return page, ConsoleErrors(page)


@pytest.fixture
def open_page(browser, stack):
    """`open_page(locale=...)`: a page of its own browser context (own cookies), on the gateway;
    the test fails on any console error of any page it opened."""
    opened: list[tuple[Page, ConsoleErrors]] = []

    def open_(locale: str = "en-GB") -> Page:
        page, errors = new_page(browser, stack.url, locale=locale)
        opened.append((page, errors))
        return page

    yield open_
    problems = [error for _, errors in opened for error in errors.errors]
    for page, _ in opened:
        page.context.close()
    assert not problems, "the page logged errors:\n" + "\n".join(problems)


@pytest.fixture
def page(open_page) -> Page:
    return open_page()


def axe_scan(page: Page, name: str) -> list[dict]:
    """axe-core's violations on `page` now; fails on any serious or critical one (written to
    test-output/axe-<name>.json either way)."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make web` installs web/node_modules")
    # Evaluated through the DevTools protocol, not added as a <script>: the pages' CSP
    # (script-src 'self') refuses an injected inline script, and it must stay on in the tests.
    page.evaluate(AXE.read_text())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    violations = result["violations"]
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / f"axe-{name}.json").write_text(json.dumps(violations, indent=2))
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not serious, f"axe found serious/critical violations on {name}:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}" for v in serious)
    return violations


@pytest.fixture
def axe():
    return axe_scan


def save_screenshot(page: Page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def screenshot():
    return save_screenshot
