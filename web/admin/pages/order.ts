// Order detail (/admin/orders/<id>): customer, items, totals, history with who made each change,
// and one button per legal next status. Each change sends If-Match with the version shown: a 412
// (someone changed it first) reloads the order and says so; a 409 names the allowed statuses.
import { ApiError } from "../../shared/api";
import { h, render } from "../../shared/dom";
import { dateTime, machineTime, number } from "../../shared/format";
import { t } from "../../shared/i18n";
import { changeStatus, confirmCancel, getOrder, itemsSection, orderHistory, type HistoryEntry, type Order } from "../../shared/orders";
import { NEXT, statusBadge, statusLabel, type Status } from "../../shared/status";
import { announce, errorAlert } from "../../shared/ui";
import type { Notification } from "../live";
import { BASE, link } from "../router";
import type { Page, PageContext } from "../shell";

export function orderPage(context: PageContext, orderId: string): Page {
  const { main } = context;
  let order: Order | null = null;
  let loading: AbortController | null = null;
  let busy = false;
  /** A message that outlives the re-render after a reload (412, 409, a live change). */
  let message: HTMLElement | null = null;
  let focusActions = false;

  render(main, h("p", { class: "muted" }, t("loading")));

  async function load(): Promise<void> {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    try {
      const [fresh, history] = await Promise.all([getOrder(orderId, controller.signal), orderHistory(orderId, controller.signal)]);
      if (controller.signal.aborted) return;
      order = fresh;
      show(fresh, history);
    } catch (error) {
      if (controller.signal.aborted) return;
      context.setTitle(t("admin.page.orders"));
      const text = error instanceof ApiError && error.status === 404 ? t("order.not_found") : undefined;
      render(main, h("h1", {}, t("order.heading", { number: "" }).trim()), errorAlert(error, text), h("p", {}, link(BASE, t("order.back"))));
    }
  }

  function show(current: Order, history: HistoryEntry[]): void {
    context.setTitle(t("admin.page.order", { number: current.number }));
    const actions = actionsSection(current);
    render(
      main,
      h("p", { class: "breadcrumb" }, link(BASE, t("order.back"))),
      h("h1", { class: "order-title" }, t("order.heading", { number: current.number }), " ", statusBadge(current.status)),
      h("div", { class: "message-slot" }, message),
      h("div", { class: "order-grid" }, customerSection(current), actions),
      itemsSection(current),
      historySection(history),
    );
    if (focusActions) {
      // After a change the pressed button is gone: the keyboard goes on from the new buttons.
      focusActions = false;
      actions.querySelector<HTMLElement>("button, h2")?.focus();
    }
  }

  function customerSection(current: Order): HTMLElement {
    return h(
      "section",
      { class: "card", "aria-labelledby": "customer-heading" },
      h("h2", { id: "customer-heading" }, t("order.customer")),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("order.name")),
        h("dd", {}, current.customer.name),
        h("dt", {}, t("order.email")),
        h("dd", {}, h("a", { href: `mailto:${current.customer.email}` }, current.customer.email)),
        h("dt", {}, t("order.placed")),
        h("dd", {}, h("time", { datetime: machineTime(current.created_at) }, dateTime(current.created_at))),
        h("dt", {}, t("order.updated")),
        h("dd", {}, h("time", { datetime: machineTime(current.updated_at) }, dateTime(current.updated_at))),
        h("dt", {}, t("order.version")),
        h("dd", { "data-version": current.version }, number(current.version)),
      ),
    );
  }

  function actionsSection(current: Order): HTMLElement {
    const next = NEXT[current.status as Status] ?? [];
    const buttons = next.map((status) =>
      status === "cancelled"
        ? h("button", { type: "button", class: "button button-danger", "data-status": status, onclick: () => void cancel(current) }, t("order.cancel"))
        : h("button", { type: "button", class: "button button-primary", "data-status": status, onclick: () => void move(current, status) }, t("order.move_to", { status: statusLabel(status) })),
    );
    return h(
      "section",
      { class: "card", "aria-labelledby": "actions-heading" },
      h("h2", { id: "actions-heading", tabindex: "-1" }, t("order.actions")),
      h("p", {}, t("order.current"), ": ", statusBadge(current.status)),
      buttons.length ? h("div", { class: "actions status-actions" }, buttons) : h("p", {}, t("order.final", { status: statusLabel(current.status) })),
    );
  }

  function historySection(history: HistoryEntry[]): HTMLElement {
    return h(
      "section",
      { class: "card", "aria-labelledby": "history-heading" },
      h("h2", { id: "history-heading" }, t("order.history")),
      h(
        "table",
        { class: "history" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("col.status")), h("th", { scope: "col" }, t("col.when")), h("th", { scope: "col" }, t("col.by")))),
        h(
          "tbody",
          {},
          history.map((entry) =>
            h(
              "tr",
              {},
              h("td", {}, statusBadge(entry.status)),
              h("td", {}, h("time", { datetime: machineTime(entry.at) }, dateTime(entry.at))),
              h("td", {}, entry.by || t("order.by_system")),
            ),
          ),
        ),
      ),
    );
  }

  function setMessage(kind: "error" | "success" | "info", text: string): void {
    message = h("div", { class: `alert alert-${kind}`, role: kind === "error" ? "alert" : "status" }, h("p", {}, text));
  }

  async function cancel(current: Order): Promise<void> {
    if (await confirmCancel(current)) await move(current, "cancelled");
  }

  async function move(current: Order, status: string): Promise<void> {
    if (busy) return;
    busy = true;
    main.querySelectorAll<HTMLButtonElement>(".status-actions button").forEach((b) => (b.disabled = true));
    try {
      const changed = await changeStatus(current, status);
      setMessage("success", t("order.changed", { number: changed.number, status: statusLabel(changed.status) }));
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        setMessage("error", t("order.conflict"));
      } else if (error instanceof ApiError && error.status === 409) {
        const allowed = Array.isArray(error.extras.allowed) ? (error.extras.allowed as string[]) : [];
        const now = typeof error.extras.current_status === "string" ? error.extras.current_status : current.status;
        setMessage(
          "error",
          allowed.length
            ? t("order.illegal", { status: statusLabel(now), allowed: allowed.map(statusLabel).join(", ") })
            : t("order.illegal_none", { status: statusLabel(now) }),
        );
      } else {
        message = errorAlert(error);
      }
    } finally {
      busy = false;
    }
    focusActions = true;
    await load();
  }

  void load();

  return {
    onLive(notification: Notification) {
      if (notification.order_id !== orderId) return false;
      if (busy) return true;
      // Our own change comes back as a notification too: only a newer version is news.
      void (async () => {
        const before = order?.version;
        await load();
        if (order && before !== undefined && order.version !== before) announce(t("order.live_reloaded"));
      })();
      return true;
    },
    dispose() {
      loading?.abort();
    },
  };
}
