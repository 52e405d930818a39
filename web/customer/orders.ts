// An account's orders: newest first, a page at a time.
import { h, render } from "../shared/dom";
import { t } from "../shared/i18n";
import { listOrders, ordersTable, type Order } from "../shared/orders";
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
  return ordersTable(orders, {
    attrs: { class: "orders-table" },
    caption: t("orders.heading"),
    captionHidden: true,
    number: (order) =>
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
  });
}
