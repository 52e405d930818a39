// The orders API as both pages call it (API.md, Orders), as the signed-in user.
import { session } from "./session";

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
