// One order: items, total, the status timeline, the current status kept up to date by polling
// GET /orders/{id}, and cancelling while it is new.
import { ApiError } from "../shared/api";
import { h, render } from "../shared/dom";
import { dateTime, machineTime } from "../shared/format";
import { t } from "../shared/i18n";
import { cancelOrder, confirmCancel, getOrder, itemsSection, orderHistory, type HistoryEntry, type Order } from "../shared/orders";
import { NEXT, statusBadge, statusLabel, type Status } from "../shared/status";
import { announce, errorAlert } from "../shared/ui";
import type { View } from "./view";

/** How often the open order is checked for a staff change. */
export const POLL_MS = 3000;

type Notice = { kind: "success" | "info"; text: string } | { kind: "error"; error: unknown; text?: string };

export function orderView(main: HTMLElement, id: string, back: (() => void) | null): View {
  let order: Order | null = null;
  let history: HistoryEntry[] = [];
  let failure: unknown = null;
  let notice: Notice | null = null;
  let cancelling = false;
  let timer: number | undefined;
  const controller = new AbortController();

  const fetchAll = async () => {
    const [fresh, entries] = await Promise.all([getOrder(id, controller.signal), orderHistory(id, controller.signal)]);
    order = fresh;
    history = entries;
  };

  const load = async () => {
    try {
      await fetchAll();
      failure = null;
    } catch (error) {
      if (!controller.signal.aborted) failure = error;
    }
  };

  /** A changed version means a change by someone else (or us): fetch the history and redraw. */
  const poll = async () => {
    if (!order || document.hidden || isFinal(order)) return;
    try {
      const fresh = await getOrder(id, controller.signal);
      if (fresh.version !== order.version) {
        const before = order.status;
        await fetchAll();
        view.render();
        if (order.status !== before) announce(t("order.status_changed", { number: order.number, status: statusLabel(order.status) }));
      }
    } catch {
      // A missed check (network, restart) is retried at the next tick; an ended session signs out by itself.
    }
  };

  const cancel = async () => {
    if (!order) return;
    const confirmed = await confirmCancel(order);
    if (!confirmed || !order) return;
    cancelling = true;
    view.render();
    try {
      order = await cancelOrder(order);
      history = await orderHistory(id, controller.signal);
      notice = { kind: "success", text: t("order.cancelled") };
    } catch (error) {
      if (error instanceof ApiError && (error.status === 409 || error.status === 412)) {
        await load();
        notice = { kind: "info", text: t("order.changed_meanwhile") };
      } else if (error instanceof ApiError && error.status === 403) {
        notice = { kind: "error", error, text: t("order.cancel_forbidden") };
      } else {
        notice = { kind: "error", error };
      }
    } finally {
      cancelling = false;
    }
    view.render();
    main.querySelector<HTMLElement>(".notice")?.focus();
  };

  const view: View = {
    render() {
      const backLink = back
        ? h(
            "p",
            {},
            h(
              "a",
              {
                href: "/",
                onclick: (event: Event) => {
                  event.preventDefault();
                  back();
                },
              },
              `← ${t("order.back")}`,
            ),
          )
        : null;
      if (failure) {
        const text = failure instanceof ApiError && (failure.status === 404 || failure.status === 422) ? t("order.not_found") : undefined;
        render(main, backLink, h("h1", { tabindex: -1 }, t("order.heading", { number: "" }).trim()), errorAlert(failure, text));
        return;
      }
      if (!order) {
        render(main, backLink, h("p", { role: "status" }, t("loading")));
        return;
      }
      render(
        main,
        backLink,
        h("h1", { tabindex: -1 }, t("order.heading", { number: order.number })),
        notice ? noticeBox(notice) : null,
        summary(order, cancelling, cancel),
        itemsSection(order),
        timeline(order, history),
      );
    },
    dispose() {
      window.clearInterval(timer);
      document.removeEventListener("visibilitychange", onVisible);
      controller.abort();
    },
  };
  const onVisible = () => void poll();
  document.addEventListener("visibilitychange", onVisible);

  view.ready = load().then(() => {
    if (controller.signal.aborted) return;
    view.render();
    timer = window.setInterval(() => void poll(), POLL_MS);
  });
  return view;
}

/** Delivered or cancelled: nothing can change any more, so nothing to poll for. */
function isFinal(order: Order): boolean {
  return (NEXT[order.status as Status] ?? []).length === 0;
}

function noticeBox(notice: Notice): HTMLElement {
  if (notice.kind === "error") {
    const box = errorAlert(notice.error, notice.text);
    box.classList.add("notice");
    box.tabIndex = -1;
    return box;
  }
  return h("div", { class: `alert alert-${notice.kind} notice`, role: "status", tabindex: -1 }, h("p", {}, notice.text));
}

function summary(order: Order, cancelling: boolean, cancel: () => void): HTMLElement {
  const canCancel = order.status === "new";
  return h(
    "section",
    { class: "card order-summary", "aria-labelledby": "current-heading" },
    h(
      "div",
      { class: "order-status" },
      h("h2", { id: "current-heading" }, t("order.current")),
      h("p", { class: "current-status", "data-status": order.status }, statusBadge(order.status)),
      h("p", { class: "muted" }, t("order.placed", { date: dateTime(order.created_at) })),
      isFinal(order) ? null : h("p", { class: "muted live-hint" }, t("order.live")),
    ),
    canCancel
      ? h(
          "div",
          { class: "order-actions" },
          h("button", { type: "button", class: "button button-danger", disabled: cancelling, onclick: cancel }, t("order.cancel")),
          h("p", { class: "hint" }, t("order.cancel_hint")),
        )
      : null,
  );
}

function timeline(order: Order, history: HistoryEntry[]): HTMLElement {
  return h(
    "section",
    { class: "card", "aria-labelledby": "timeline-heading" },
    h("h2", { id: "timeline-heading" }, t("order.timeline")),
    h(
      "ol",
      { class: "timeline" },
      history.map((entry, index) =>
        h(
          "li",
          { class: "timeline-step", "aria-current": index === history.length - 1 && entry.status === order.status ? "step" : null },
          statusBadge(entry.status),
          " ",
          h("time", { datetime: machineTime(entry.at) }, dateTime(entry.at)),
        ),
      ),
    ),
  );
}
