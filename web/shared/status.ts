// Order statuses as both pages show them: one name (translated) and one colour each (base.css
// .status-<name>), and the order they come in.
import { h } from "./dom";
import { t } from "./i18n";

export const STATUSES = ["new", "paid", "picking", "packed", "shipped", "delivered", "cancelled"] as const;
export type Status = (typeof STATUSES)[number];

/** The happy path, for a progress display; cancelled is off it. */
export const FLOW: readonly Status[] = ["new", "paid", "picking", "packed", "shipped", "delivered"];

/** The same rules as actors/orders/domain.py TRANSITIONS (the server decides; this only shapes the UI). */
export const NEXT: Record<Status, readonly Status[]> = {
  new: ["paid", "cancelled"],
  paid: ["picking", "cancelled"],
  picking: ["packed", "cancelled"],
  packed: ["shipped"],
  shipped: ["delivered"],
  delivered: [],
  cancelled: [],
};

export function statusLabel(status: string): string {
  return t(`status.${status}`);
}

/** A coloured badge with the status name as its text (the colour is never the only signal). */
export function statusBadge(status: string): HTMLSpanElement {
  return h("span", { class: `status status-${status}` }, statusLabel(status));
}
