// Client routes under /admin/ (the gateway serves this page for every one of them).
import { h } from "../shared/dom";

export type Route =
  | { name: "orders" }
  | { name: "order"; id: string }
  | { name: "analytics" }
  | { name: "users" }
  | { name: "login" }
  | { name: "not_found" };

export const BASE = "/admin/";

export function parse(pathname: string): Route {
  const path = pathname.replace(/\/+$/, "/");
  if (path === "/admin" || path === BASE) return { name: "orders" };
  const order = /^\/admin\/orders\/([^/]+)\/?$/.exec(pathname);
  if (order?.[1]) return { name: "order", id: decodeURIComponent(order[1]) };
  if (/^\/admin\/analytics\/?$/.test(pathname)) return { name: "analytics" };
  if (/^\/admin\/users\/?$/.test(pathname)) return { name: "users" };
  if (/^\/admin\/login\/?$/.test(pathname)) return { name: "login" };
  return { name: "not_found" };
}

export function orderPath(id: string): string {
  return `${BASE}orders/${encodeURIComponent(id)}`;
}

type Listener = () => void;
const listeners = new Set<Listener>();

export function onNavigate(listener: Listener): void {
  listeners.add(listener);
}

/** Go to `href` (a path under /admin/) without loading the page again. */
export function navigate(href: string, { replace = false } = {}): void {
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  listeners.forEach((listener) => listener());
}

window.addEventListener("popstate", () => listeners.forEach((listener) => listener()));

/** A real link (opens in a new tab, copyable) that navigates in place on a plain click. */
export function link(href: string, text: string | Node, attrs: Record<string, string> = {}): HTMLAnchorElement {
  const anchor = h("a", { href, ...attrs }, text);
  anchor.addEventListener("click", (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  });
  return anchor;
}
