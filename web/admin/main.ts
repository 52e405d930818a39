// The admin panel: one page with client routes under /admin/ (router.ts). Signed out, any route
// shows the sign-in form in place, so the page opened (e.g. from a desktop notification) is the
// one shown after signing in. Staff only: another account gets a "staff only" message and no data.
import "../shared/base.css";
import "./admin.css";
import "./messages";
import { ApiError } from "../shared/api";
import { byId, h, render } from "../shared/dom";
import { dateTime, machineTime } from "../shared/format";
import { onLocaleChange, t } from "../shared/i18n";
import { session, type Me } from "../shared/session";
import { announce, errorAlert, field, languageSwitch } from "../shared/ui";
import { LiveFeed, type LiveState, type Notification } from "./live";
import { analyticsPage } from "./pages/analytics";
import { orderPage } from "./pages/order";
import { ordersPage } from "./pages/orders";
import { usersPage } from "./pages/users";
import { BASE, link, navigate, onNavigate, parse, type Route } from "./router";
import { isStaff, type Page, type PageContext } from "./shell";

const app = byId("app");
let page: Page | null = null;
let generation = 0;
/** A message for the next sign-in form (signed out, session ended). */
let notice: string | null = null;
let signingOut = false;
let liveState: LiveState = { kind: "stopped" };
const unseen: Notification[] = [];
let panelOpen = false;

const feed = new LiveFeed(receive, (state) => {
  liveState = state;
  paintLive();
});

// Header parts that change without a re-render.
const liveStatus = h("span", { class: "live-state", role: "status" });
const badgeCount = h("span", { "aria-live": "polite", "aria-atomic": "true" });
const badge = h("button", { type: "button", class: "live-badge", "aria-expanded": "false", "aria-controls": "live-panel" }, badgeCount);
const panelList = h("ul", { class: "live-list" });
const panelHeading = h("h2", { id: "live-panel-heading" });
const markSeen = h("button", { type: "button", class: "button" });
// Made once: it keeps itself up to date with the language (a new one per render would pile up listeners).
const language = languageSwitch();
const panel = h("section", { id: "live-panel", class: "live-panel card", hidden: true, "aria-labelledby": "live-panel-heading" }, panelHeading, panelList, markSeen);

badge.addEventListener("click", () => {
  panelOpen = !panelOpen;
  paintLive();
  if (panelOpen) markSeen.focus();
});
markSeen.addEventListener("click", () => {
  unseen.length = 0;
  panelOpen = false;
  paintLive();
  badge.focus();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && panelOpen) {
    panelOpen = false;
    paintLive();
    badge.focus();
  }
});

function receive(notification: Notification): void {
  const shownHere = page?.onLive?.(notification) === true;
  if (!shownHere) {
    unseen.unshift(notification);
    unseen.splice(50);
    paintLive();
  }
  announce(notification.title);
}

function paintLive(): void {
  liveStatus.textContent =
    liveState.kind === "connected"
      ? t("live.connected")
      : liveState.kind === "offline"
        ? t("live.offline", { seconds: liveState.retryInS })
        : liveState.kind === "connecting"
          ? t("live.connecting")
          : "";
  liveStatus.className = `live-state live-${liveState.kind}`;
  badgeCount.textContent = unseen.length ? t("live.badge", { count: unseen.length }) : t("live.none");
  badge.classList.toggle("has-unseen", unseen.length > 0);
  badge.setAttribute("aria-expanded", String(panelOpen));
  panel.hidden = !panelOpen;
  panelHeading.textContent = t("live.panel");
  markSeen.textContent = t("live.mark_seen");
  panelList.replaceChildren(
    ...(unseen.length
      ? unseen.map((n) =>
          h(
            "li",
            {},
            link(new URL(n.url, location.origin).pathname, n.title),
            h("span", { class: "muted" }, " — ", n.message, " "),
            h("time", { datetime: machineTime(n.created_at), class: "muted" }, dateTime(n.created_at)),
          ),
        )
      : [h("li", {}, t("live.empty"))]),
  );
}

function header(me: Me | null, route: Route | null): HTMLElement {
  const admin = me?.roles.includes("admin") ?? false;
  const staff = me !== null && isStaff(me);
  const navItem = (href: string, label: string, current: boolean) =>
    h("li", {}, link(href, label, current ? { "aria-current": "page" } : {}));
  return h(
    "header",
    { class: "site-header" },
    h(
      "div",
      { class: "header-main" },
      h("a", { class: "brand", href: BASE }, t("admin.title")),
      staff
        ? h(
          "nav",
          { "aria-label": t("nav.label") },
          h(
            "ul",
            { class: "nav-list" },
            navItem(BASE, t("nav.orders"), route?.name === "orders" || route?.name === "order"),
            navItem(`${BASE}analytics`, t("nav.analytics"), route?.name === "analytics"),
            admin ? navItem(`${BASE}users`, t("nav.users"), route?.name === "users") : null,
          ),
        )
        : null,
    ),
    h(
      "div",
      { class: "header-tools" },
      staff ? h("div", { class: "live" }, liveStatus, badge) : null,
      me ? h("span", { class: "muted who" }, t("signed_in_as", { email: me.email ?? "" })) : null,
      language,
      me ? h("button", { type: "button", class: "button", onclick: signOut }, t("signout")) : null,
    ),
  );
}

function frame(me: Me | null, route: Route | null): HTMLElement {
  const main = h("main", { id: "main", tabindex: "-1" });
  render(app, h("a", { class: "skip-link", href: "#main" }, t("skip")), header(me, route), me && isStaff(me) ? panel : null, main);
  paintLive();
  return main;
}

async function signOut(): Promise<void> {
  signingOut = true;
  notice = t("signed_out");
  feed.stop();
  unseen.length = 0;
  try {
    await session.signOut();
  } catch {
    // The cookie may outlive a failed call; the page forgets the token either way.
  } finally {
    signingOut = false;
  }
  navigate(BASE, { replace: true });
}

function signInForm(main: HTMLElement, route: Route): void {
  document.title = t("admin.page.signin");
  const email = field({ label: t("field.email"), name: "email", type: "email", autocomplete: "username", required: true });
  const password = field({ label: t("field.password"), name: "password", type: "password", autocomplete: "current-password", required: true });
  const message = h("div", { class: "form-message" });
  const submit = h("button", { type: "submit", class: "button button-primary" }, t("signin.submit"));
  const form = h("form", { class: "card signin", novalidate: true }, email.element, password.element, message, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    email.setError(email.input.value.trim() ? null : t("field.required", { field: t("field.email") }));
    password.setError(password.input.value ? null : t("field.required", { field: t("field.password") }));
    if (!email.input.value.trim()) return email.input.focus();
    if (!password.input.value) return password.input.focus();
    submit.disabled = true;
    render(message);
    try {
      notice = null;
      await session.signIn({ email: email.input.value.trim(), password: password.input.value });
      // session.onChange shows the page that was opened.
    } catch (error) {
      const text = error instanceof ApiError && error.status === 401 ? t("signin.failed") : undefined;
      render(message, errorAlert(error, text));
      password.input.value = "";
      password.input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  render(
    main,
    h("h1", {}, t("signin.heading")),
    notice ? h("div", { class: "alert alert-info", role: "status" }, h("p", {}, notice)) : null,
    h("p", {}, t("signin.intro"), route.name === "orders" || route.name === "login" ? null : [" ", t("signin.then")]),
    form,
  );
}

function staffOnly(main: HTMLElement, me: Me): void {
  document.title = t("staff_only.heading");
  render(
    main,
    h("h1", {}, t("staff_only.heading")),
    h(
      "div",
      { class: "alert alert-error", role: "alert" },
      h("p", {}, t("staff_only.message", { email: me.email ?? me.order_number ?? "" })),
      h("p", {}, t("staff_only.customer"), " ", h("a", { href: "/" }, t("staff_only.link"))),
    ),
  );
}

function notFound(main: HTMLElement): Page {
  document.title = t("not_found.heading");
  render(main, h("h1", {}, t("not_found.heading")), h("p", {}, t("not_found.message")), h("p", {}, link(BASE, t("order.back"))));
  return {};
}

function adminOnly(main: HTMLElement): Page {
  document.title = t("admin_only.heading");
  render(main, h("h1", {}, t("admin_only.heading")), h("div", { class: "alert alert-error", role: "alert" }, h("p", {}, t("admin_only.message"))));
  return {};
}

/** Render what the address asks for, as the session allows. */
async function show({ focus = false } = {}): Promise<void> {
  const mine = ++generation;
  panelOpen = false;
  page?.dispose?.();
  page = null;
  const route = parse(location.pathname);
  if (!session.signedIn) {
    feed.stop();
    signInForm(frame(null, route), route);
    return;
  }
  let me: Me;
  try {
    me = await session.me();
  } catch (error) {
    if (mine !== generation) return;
    render(frame(null, route), errorAlert(error));
    return;
  }
  if (mine !== generation) return;
  if (!isStaff(me)) {
    feed.stop();
    staffOnly(frame(me, route), me);
    return;
  }
  if (route.name === "login") {
    navigate(BASE, { replace: true });
    return;
  }
  feed.start();
  const main = frame(me, route);
  const context: PageContext = { main, me, isAdmin: me.roles.includes("admin"), setTitle: (text) => (document.title = text) };
  switch (route.name) {
    case "orders":
      page = ordersPage(context);
      break;
    case "order":
      page = orderPage(context, route.id);
      break;
    case "analytics":
      page = analyticsPage(context);
      break;
    case "users":
      page = context.isAdmin ? usersPage(context) : adminOnly(main);
      break;
    default:
      page = notFound(main);
  }
  if (focus) main.focus();
}

async function boot(): Promise<void> {
  try {
    await session.restore();
  } catch (error) {
    render(frame(null, null), errorAlert(error));
  }
  session.onChange((signedIn) => {
    if (!signedIn && !signingOut && !notice) notice = t("session.ended");
    void show({ focus: true });
  });
  onNavigate(() => void show({ focus: true }));
  onLocaleChange(async () => {
    const switching = language.contains(document.activeElement);
    await show();
    if (switching) language.querySelector("select")?.focus(); // moved by the re-render, which blurs it
  });
  await show();
}

void boot();
