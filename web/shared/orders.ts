// Orders as both pages use them: the API calls (API.md, Orders) as the signed-in user, and the
// pieces both pages show (an order's items, the orders list table).
import { h, type Attrs, type Child } from "./dom";
import { dateTime, machineTime, money, number } from "./format";
import { t } from "./i18n";
import { session } from "./session";
import { statusBadge } from "./status";
import { confirmDialog } from "./ui";

export interface OrderItem {
  sku: string;
  name: string;
  quantity: number;
  /** A decimal string, e.g. "39.90". */
  unit_price: string;
}

export interface Order {
  id: string;
  number: string;
  status: string;
  customer: { email: string; name: string };
  items: OrderItem[];
  currency: string;
  total: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface HistoryEntry {
  status: string;
  at: string;
  /** Who made the change: an email, "customer" or "staff". */
  by: string;
}

export interface OrderList {
  items: Order[];
  next_cursor: string | null;
  total: number;
}

export interface OrderQuery {
  status?: readonly string[];
  q?: string;
  email?: string;
  created_from?: string;
  created_to?: string;
  limit?: number;
  cursor?: string | null;
}

export function listOrders(query: OrderQuery = {}, signal?: AbortSignal): Promise<OrderList> {
  return session.request<OrderList>("/orders", { query: { ...query }, signal });
}

export function getOrder(id: string, signal?: AbortSignal): Promise<Order> {
  return session.request<Order>(`/orders/${encodeURIComponent(id)}`, { signal });
}

export function orderHistory(id: string, signal?: AbortSignal): Promise<HistoryEntry[]> {
  return session.request<HistoryEntry[]>(`/orders/${encodeURIComponent(id)}/history`, { signal });
}

/** If-Match carries the version the user saw: a change made meanwhile answers 412. */
export function cancelOrder(order: Order): Promise<Order> {
  return session.request<Order>(`/orders/${encodeURIComponent(order.id)}/cancel`, {
    method: "POST",
    headers: { "If-Match": `"${order.version}"` },
  });
}

export function changeStatus(order: Order, status: string): Promise<Order> {
  return session.request<Order>(`/orders/${encodeURIComponent(order.id)}/status`, {
    method: "POST",
    body: { status },
    headers: { "If-Match": `"${order.version}"` },
  });
}

/** unit_price × quantity as a decimal string, in exact integer arithmetic (no float rounding). */
export function lineTotal(unitPrice: string, quantity: number): string {
  const [whole = "0", fraction = ""] = unitPrice.split(".");
  const scale = fraction.length;
  const negative = whole.startsWith("-");
  const units = BigInt(whole.replace("-", "") + fraction) * BigInt(quantity);
  const digits = units.toString().padStart(scale + 1, "0");
  const text = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
}

/** How many pieces an order holds. */
export function pieces(order: Order): number {
  return order.items.reduce((sum, item) => sum + item.quantity, 0);
}

/** Ask before cancelling `order`; true only when the person confirmed. What cancelling means
 * (order.cancel_message) and the button that keeps the order (order.keep) are each page's own words. */
export function confirmCancel(order: Order): Promise<boolean> {
  return confirmDialog({
    title: t("order.cancel_title", { number: order.number }),
    message: t("order.cancel_message"),
    confirm: t("order.cancel"),
    dismiss: t("order.keep"),
    danger: true,
  });
}

/** An order's items: a table with one row a product (its name the row header) and the total below. */
export function itemsSection(order: Order): HTMLElement {
  return h(
    "section",
    { class: "card", "aria-labelledby": "items-heading" },
    h("h2", { id: "items-heading" }, t("order.items")),
    h(
      "table",
      { class: "items-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t("col.product")),
          h("th", { scope: "col" }, t("col.sku")),
          h("th", { scope: "col", class: "num" }, t("col.quantity")),
          h("th", { scope: "col", class: "num" }, t("col.unit_price")),
          h("th", { scope: "col", class: "num" }, t("col.amount")),
        ),
      ),
      h(
        "tbody",
        {},
        order.items.map((item) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, item.name),
            h("td", { class: "sku" }, h("code", {}, item.sku)),
            h("td", { class: "num" }, number(item.quantity)),
            h("td", { class: "num" }, money(item.unit_price, order.currency)),
            h("td", { class: "num" }, money(lineTotal(item.unit_price, item.quantity), order.currency)),
          ),
        ),
      ),
      h(
        "tfoot",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "row", colspan: 4 }, t("order.total")),
          // Two names for the one cell: the customer page's tests look for .order-total, the admin panel's for td.total.
          h("td", { class: "num order-total total" }, money(order.total, order.currency)),
        ),
      ),
    ),
  );
}

export interface OrdersTableOptions {
  /** The table's own attributes (its class, a tabindex to move focus to it). */
  attrs: Attrs;
  /** The table's name; visually hidden when a heading just above says the same. */
  caption: string;
  captionHidden?: boolean;
  /** A column with the customer's name and email (the admin panel). */
  customer?: boolean;
  /** The row header: the order's number as a link to it (each page opens an order its own way). */
  number(order: Order): Child | Child[];
  /** A row's own attributes (the admin panel marks the orders the live feed changed). */
  row?(order: Order): Attrs;
}

/** A list of orders, one row each: number, placed, (customer,) pieces, total, status. */
export function ordersTable(orders: Order[], options: OrdersTableOptions): HTMLTableElement {
  return h(
    "table",
    options.attrs,
    h("caption", { class: options.captionHidden ? "visually-hidden" : null }, options.caption),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, t("col.order")),
        h("th", { scope: "col" }, t("col.placed")),
        options.customer ? h("th", { scope: "col" }, t("col.customer")) : null,
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
          options.row?.(order) ?? {},
          h("th", { scope: "row" }, options.number(order)),
          h("td", {}, h("time", { datetime: machineTime(order.created_at) }, dateTime(order.created_at))),
          options.customer
            ? h("td", {}, h("div", {}, order.customer.name), h("div", { class: "muted small" }, order.customer.email))
            : null,
          h("td", { class: "num" }, number(pieces(order))),
          h("td", { class: "num" }, money(order.total, order.currency)),
          h("td", {}, statusBadge(order.status)),
        ),
      ),
    ),
  );
}
