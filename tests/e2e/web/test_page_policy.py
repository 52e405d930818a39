"""The gateway's page headers as Chromium applies them: the CSP lets a page talk to its own
origin (the API and the notifications WebSocket) and nothing inline or eval'd runs; under the
pages' Referrer-Policy a page's own POST carries its origin, as the CSRF check of
/auth/session wants."""

from tests.e2e.web.conftest import new_page

COLLECT_VIOLATIONS = """() => {
    window.violations = [];
    document.addEventListener("securitypolicyviolation",
        (event) => window.violations.push(event.effectiveDirective + " " + event.blockedURI));
}"""


def test_a_page_reaches_the_api_and_the_websocket_under_its_csp(page, admin_token):
    page.goto("/admin/")
    page.evaluate(COLLECT_VIOLATIONS)
    opened = page.evaluate("""(token) => new Promise((resolve) => {
        const ws = new WebSocket(`ws://${location.host}/notifications/ws?token=${token}`);
        ws.onopen = () => { ws.close(); resolve("open"); };
        ws.onerror = () => resolve("error");
    })""", admin_token)
    assert opened == "open"
    # Signed out (no cookie): 401, not the CSRF check's 403, so the Origin sent is the page's.
    refresh = page.evaluate("""() => fetch("/auth/session/refresh",
        {method: "POST", headers: {"X-Orderflow-CSRF": "1"}}).then((answer) => answer.status)""")
    assert refresh == 401
    assert page.evaluate("window.violations") == []


def test_nothing_inline_or_evaluated_runs(browser, stack):
    page, errors = new_page(browser, stack.url)
    try:
        page.goto("/")
        page.evaluate(COLLECT_VIOLATIONS)
        page.evaluate("""() => {
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true";
            document.head.append(script);
        }""")
        # From a task of the page's own: code Playwright evaluates may call eval (DevTools allows it).
        evaluated = page.evaluate("""() => new Promise((resolve) => setTimeout(() => {
            try { resolve(String(eval("1 + 1"))); } catch (error) { resolve(error.name); }
        }, 0))""")
        page.wait_for_function("window.violations.length >= 2")
        assert page.evaluate("window.inlineRan") is None and evaluated == "EvalError"
        directives = {violation.split(" ")[0] for violation in page.evaluate("window.violations")}
        assert directives == {"script-src-elem", "script-src"}, directives
        assert any("Content Security Policy" in error for error in errors.errors)  # Chromium says why
    finally:
        page.context.close()
