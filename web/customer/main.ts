// The customer page (/): follow an order or sign in, see own orders, one order at ?order=<id>.
import "../shared/base.css";
import "./customer.css";
import "./messages";
import { byId, h, render } from "../shared/dom";
import { onLocaleChange, t } from "../shared/i18n";
import { session, type Me } from "../shared/session";
import { errorAlert, languageSwitch } from "../shared/ui";
import { orderView } from "./order";
import { ordersView } from "./orders";
import { signInView } from "./signin";
import type { View } from "./view";

const main = h("main", { id: "main", tabindex: -1 });
const who = h("p", { class: "who" });
const signOutButton = h("button", { type: "button", class: "button", hidden: true, onclick: () => void signOut() });
const skip = h("a", { class: "skip-link", href: "#main" });
const brand = h("a", { class: "brand", href: "/" }, "Orderflow");

let view: View | null = null;
let me: Me | null = null;
// Shown once on the next sign-in screen (signed out, session ended).
let notice: string | null = null;
let signingOut = false;

function shellTexts(): void {
  document.title = t("page.title");
  skip.textContent = t("skip");
  signOutButton.textContent = t("signout");
  who.textContent = !me ? "" : me.order_number ? t("following", { number: me.order_number }) : t("signed_in_as", { email: me.email ?? "" });
  signOutButton.hidden = !me;
}

function show(next: View): void {
  view?.dispose?.();
  view = next;
  shellTexts();
  view.render();
  // A new screen: a screen reader (and the next Tab) starts at its heading, once it has its data,
  // unless the user has moved on meanwhile.
  const focusHeading = () => {
    const active = document.activeElement;
    if (view === next && (!active || active === document.body || main.contains(active) || !active.isConnected)) {
      main.querySelector<HTMLElement>("h1")?.focus();
    }
  };
  if (next.ready) void next.ready.then(focusHeading);
  else focusHeading();
}

async function route(): Promise<void> {
  if (!session.signedIn) {
    me = null;
    const message = notice;
    notice = null;
    show(signInView(main, message, () => void afterSignIn()));
    return;
  }
  me = await session.me();
  const wanted = new URLSearchParams(location.search).get("order") ?? me.order_id;
  if (wanted) {
    // An order-number session sees one order: no list to go back to.
    const back = me.order_id ? null : () => navigate("/");
    show(orderView(main, wanted, back));
  } else {
    show(ordersView(main, (order) => navigate(`/?order=${encodeURIComponent(order.id)}`)));
  }
}

function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  void route().catch(failed);
}

async function afterSignIn(): Promise<void> {
  me = await session.me();
  navigate(me.order_id ? `/?order=${encodeURIComponent(me.order_id)}` : "/");
}

async function signOut(): Promise<void> {
  signingOut = true;
  try {
    await session.signOut();
  } catch {
    // The cookie may be gone already; the page forgets the token either way.
  } finally {
    signingOut = false;
  }
  notice = t("signed_out");
  navigate("/", true);
}

function failed(error: unknown): void {
  view?.dispose?.();
  view = { render: () => render(main, h("h1", { tabindex: -1 }, t("track.heading")), errorAlert(error)) };
  view.render();
}

session.onChange((signedIn) => {
  if (!signedIn && !signingOut) {
    notice = t("session.ended");
    navigate("/", true);
  }
});

window.addEventListener("popstate", () => void route().catch(failed));

// A language switch redraws the screen in place, keeping what was typed and where focus was.
onLocaleChange(() => {
  const values = new Map([...main.querySelectorAll("input")].map((input) => [input.id, input.value]));
  const focused = document.activeElement?.id;
  shellTexts();
  view?.render();
  main.querySelectorAll("input").forEach((input) => {
    const value = values.get(input.id);
    if (value !== undefined) input.value = value;
  });
  if (focused && main.contains(document.getElementById(focused))) document.getElementById(focused)?.focus();
});

render(
  byId("app"),
  skip,
  h("header", { class: "site-header" }, brand, h("div", { class: "header-tools" }, who, signOutButton, languageSwitch())),
  main,
);
shellTexts();
render(main, h("p", { role: "status" }, t("loading")));

session
  .restore()
  .catch(() => false)
  .then(() => route())
  .catch(failed);
