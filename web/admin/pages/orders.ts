// Orders list (/admin/): newest first; filters by status (any of several), date range and a search
// (the API's `q`); keyset paging with the API's cursors; the total count. The filters live in the
// address (shareable, kept on reload); a live notification reloads the page shown.
import { h, render, uniqueId } from "../../shared/dom";
import { t } from "../../shared/i18n";
import { listOrders, ordersTable, type Order, type OrderList, type OrderQuery } from "../../shared/orders";
import { STATUSES, statusLabel } from "../../shared/status";
import { errorAlert } from "../../shared/ui";
import type { Notification } from "../live";
import { link, orderPath } from "../router";
import type { Page, PageContext } from "../shell";

const PAGE_SIZE = 25;

interface Filters {
  status: string[];
  q: string;
  from: string;
  to: string;
}

function filtersFromAddress(): Filters {
  const params = new URLSearchParams(location.search);
  return {
    status: params.getAll("status").filter((s) => (STATUSES as readonly string[]).includes(s)),
    q: params.get("q") ?? "",
    from: params.get("from") ?? "",
    to: params.get("to") ?? "",
  };
}

function addressOf(filters: Filters): string {
  const params = new URLSearchParams();
  filters.status.forEach((s) => params.append("status", s));
  if (filters.q) params.set("q", filters.q);
  if (filters.from) params.set("from", filters.from);
  if (filters.to) params.set("to", filters.to);
  const query = params.toString();
  return `${location.pathname}${query ? `?${query}` : ""}`;
}

/** A day picked in the browser's time zone: from its midnight, until the next day's midnight (exclusive). */
function dayStart(day: string, plusDays = 0): string | undefined {
  if (!day) return undefined;
  const [y, m, d] = day.split("-").map(Number);
  if (!y || !m || !d) return undefined;
  return new Date(y, m - 1, d + plusDays).toISOString();
}

function queryOf(filters: Filters, cursor: string | null): OrderQuery {
  return {
    status: filters.status,
    q: filters.q.trim() || undefined,
    created_from: dayStart(filters.from),
    created_to: dayStart(filters.to, 1),
    limit: PAGE_SIZE,
    cursor,
  };
}

export function ordersPage(context: PageContext): Page {
  context.setTitle(t("admin.page.orders"));
  let filters = filtersFromAddress();
  // Keyset paging: the cursors of the pages before this one (previous), and this page's.
  const earlier: (string | null)[] = [];
  let cursor: string | null = null;
  let loading: AbortController | null = null;
  /** Orders the live feed told about while the list is open: "new" or "updated". */
  const changed = new Map<string, "new" | "updated">();

  const statusBoxes = STATUSES.map((status) => {
    const id = `filter-status-${status}`;
    const input = h("input", { type: "checkbox", id, name: "status", value: status, checked: filters.status.includes(status) });
    return { status, input, element: h("div", { class: "check" }, input, h("label", { for: id }, statusLabel(status))) };
  });
  const searchHintId = uniqueId("search-hint");
  const search = h("input", { id: "filter-q", name: "q", type: "search", value: filters.q, "aria-describedby": searchHintId, autocomplete: "off" });
  const from = h("input", { id: "filter-from", name: "from", type: "date", value: filters.from });
  const to = h("input", { id: "filter-to", name: "to", type: "date", value: filters.to });
  const clear = h("button", { type: "button", class: "button" }, t("orders.clear"));
  const form = h(
    "form",
    { class: "card filters", role: "search", "aria-label": t("orders.filters") },
    h("fieldset", { class: "statuses" }, h("legend", {}, t("orders.status")), statusBoxes.map((b) => b.element)),
    h(
      "div",
      { class: "filter-row" },
      h("div", { class: "field" }, h("label", { for: "filter-from" }, t("orders.from")), from),
      h("div", { class: "field" }, h("label", { for: "filter-to" }, t("orders.to")), to),
      h(
        "div",
        { class: "field grow" },
        h("label", { for: "filter-q" }, t("orders.search")),
        h("p", { id: searchHintId, class: "hint" }, t("orders.search.hint")),
        search,
      ),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button button-primary" }, t("orders.apply")), clear),
  );
  const count = h("p", { class: "count", "aria-live": "polite", "aria-atomic": "true" });
  const results = h("div", { class: "results" });
  const previous = h("button", { type: "button", class: "button" }, t("orders.previous"));
  const next = h("button", { type: "button", class: "button" }, t("orders.next"));
  const pageNumber = h("span", { class: "muted" });
  const pager = h("nav", { class: "pager actions", "aria-label": t("orders.table") }, previous, pageNumber, next);
  let nextCursor: string | null = null;

  render(context.main, h("h1", {}, t("orders.heading")), form, count, results, pager);

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    filters = {
      status: statusBoxes.filter((b) => b.input.checked).map((b) => b.status),
      q: search.value.trim(),
      from: from.value,
      to: to.value,
    };
    history.replaceState(null, "", addressOf(filters));
    earlier.length = 0;
    cursor = null;
    void load();
  });
  clear.addEventListener("click", () => {
    statusBoxes.forEach((b) => (b.input.checked = false));
    search.value = from.value = to.value = "";
    form.requestSubmit();
  });
  next.addEventListener("click", () => {
    if (!nextCursor) return;
    earlier.push(cursor);
    cursor = nextCursor;
    void load({ focusTable: true });
  });
  previous.addEventListener("click", () => {
    if (!earlier.length) return;
    cursor = earlier.pop() ?? null;
    void load({ focusTable: true });
  });

  async function load({ focusTable = false, quiet = false } = {}): Promise<void> {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    if (!quiet) results.setAttribute("aria-busy", "true");
    let list: OrderList;
    try {
      list = await listOrders(queryOf(filters, cursor), controller.signal);
    } catch (error) {
      if (controller.signal.aborted) return;
      render(results, errorAlert(error));
      results.removeAttribute("aria-busy");
      return;
    }
    if (controller.signal.aborted) return;
    results.removeAttribute("aria-busy");
    nextCursor = list.next_cursor;
    count.textContent = t("orders.count", { count: list.total });
    render(results, list.items.length ? table(list.items) : h("p", { class: "card" }, t("orders.empty")));
    previous.disabled = earlier.length === 0;
    next.disabled = !nextCursor;
    pageNumber.textContent = t("orders.page", { page: earlier.length + 1 });
    pager.hidden = earlier.length === 0 && !nextCursor;
    if (focusTable) results.querySelector<HTMLElement>("table")?.focus();
  }

  function table(orders: Order[]): HTMLTableElement {
    return ordersTable(orders, {
      attrs: { class: "orders card", tabindex: "-1" },
      caption: t("orders.table"),
      customer: true,
      number: (order) => [
        link(orderPath(order.id), order.number),
        changed.has(order.id) ? h("span", { class: "changed-mark" }, " ", t(`orders.${changed.get(order.id)}_row`)) : null,
      ],
      row: (order) => ({ class: changed.has(order.id) ? "changed" : null, "data-order-id": order.id }),
    });
  }

  void load();

  return {
    onLive(notification: Notification) {
      if (changed.get(notification.order_id) !== "new") {
        changed.set(notification.order_id, notification.kind === "order_created" ? "new" : "updated");
      }
      void load({ quiet: true });
    },
    dispose() {
      loading?.abort();
    },
  };
}
