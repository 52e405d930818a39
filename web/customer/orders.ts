// An account's orders: newest first, a page at a time.
import { h, render } from "../shared/dom";
import { dateTime, machineTime, money, number } from "../shared/format";
import { t } from "../shared/i18n";
import { listOrders, pieces, type Order } from "../shared/orders";
import { statusBadge } from "../shared/status";
import { errorAlert } from "../shared/ui";
import type { View } from "./view";

const PAGE = 20;

export function ordersView(main: HTMLElement, open: (order: Order) => void): View {
  const orders: Order[] = [];
  let total = 0;
  let next: string | null = null;
  let loaded = false;
  let error: unknown = null;
  let loadingMore = false;
  const controller = new AbortController();

  const load = async () => {
    try {
      const page = await listOrders({ limit: PAGE, cursor: next }, controller.signal);
      orders.push(...page.items);
      total = page.total;
      next = page.next_cursor;
      error = null;
    } catch (e) {
      if (controller.signal.aborted) return;
      error = e;
    }
    loaded = true;
  };

  const view: View = {
    render() {
      const heading = h("h1", { tabindex: -1 }, t("orders.heading"));
      if (!loaded) {
        render(main, heading, h("p", { role: "status" }, t("loading")));
        return;
      }
      const more = next
        ? h(
            "button",
            {
              type: "button",
              class: "button",
              disabled: loadingMore,
              onclick: async () => {
                loadingMore = true;
                view.render();
                const before = orders.length;
                await load();
                loadingMore = false;
                view.render();
                // Keyboard users continue from the first new order.
                main.querySelectorAll<HTMLAnchorElement>("tbody a")[before]?.focus();
              },
            },
            t("orders.more"),
          )
        : null;
      render(
        main,
        heading,
        error ? errorAlert(error) : null,
        orders.length === 0 && !error
          ? h("p", { class: "card" }, t("orders.empty"))
          : h(
              "div",
              { class: "card" },
              h("p", { class: "muted" }, t("orders.count", { count: total })),
              table(orders, open),
              more ? h("div", { class: "actions" }, more) : null,
            ),
      );
    },
    dispose() {
      controller.abort();
    },
  };
  view.ready = load().then(() => view.render());
  return view;
}

function table(orders: Order[], open: (order: Order) => void): HTMLTableElement {
  return h(
    "table",
    { class: "orders-table" },
    h("caption", { class: "visually-hidden" }, t("orders.heading")),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, t("col.order")),
        h("th", { scope: "col" }, t("col.placed")),
        h("th", { scope: "col", class: "num" }, t("col.items")),
        h("th", { scope: "col", class: "num" }, t("col.total")),
        h("th", { scope: "col" }, t("col.status")),
      ),
    ),
    h(
      "tbody",
      {},
      orders.map((order) =>
        h(
          "tr",
          {},
          h(
            "th",
            { scope: "row" },
            h(
              "a",
              {
                href: `/?order=${encodeURIComponent(order.id)}`,
                onclick: (event: Event) => {
                  const mouse = event as MouseEvent;
                  if (mouse.ctrlKey || mouse.metaKey || mouse.shiftKey || mouse.button !== 0) return;
                  event.preventDefault();
                  open(order);
                },
              },
              order.number,
            ),
          ),
          h("td", {}, h("time", { datetime: machineTime(order.created_at) }, dateTime(order.created_at))),
          h("td", { class: "num" }, number(pieces(order))),
          h("td", { class: "num" }, money(order.total, order.currency)),
          h("td", {}, statusBadge(order.status)),
        ),
      ),
    ),
  );
}
