// Analytics (/admin/analytics): for a chosen range of days (GET /analytics/stats), the summary and
// four charts (orders per day, revenue per currency, status distribution, top products); the
// reports (GET /analytics/reports, download by name) and, for admins, "Make a report now".
import { ApiError } from "../../shared/api";
import { h, render } from "../../shared/dom";
import { dateTime, machineTime, money, number } from "../../shared/format";
import { intlLocale, t } from "../../shared/i18n";
import { session } from "../../shared/session";
import { STATUSES, statusLabel } from "../../shared/status";
import { announce, errorAlert } from "../../shared/ui";
import { barChart, columnChart, type Datum } from "../charts";
import type { Page, PageContext } from "../shell";

interface Stats {
  from: string;
  to: string;
  orders: number;
  revenue: Record<string, string>;
  average_order_value: Record<string, string>;
  by_status: Record<string, number>;
  trend: { period: string; orders: number; revenue: Record<string, string> }[];
  top_products: { sku: string; name: string; quantity: number; revenue: Record<string, string> }[];
}

interface Report {
  name: string;
  period: string;
  created_at: string;
  size: number;
}

const PERIODS = ["day", "week", "month", "hour"];
const DEFAULT_DAYS = 30;

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function shortDay(day: string): string {
  return new Intl.DateTimeFormat(intlLocale(), { day: "numeric", month: "short", timeZone: "UTC" }).format(new Date(`${day}T00:00:00Z`));
}

function moneyList(amounts: Record<string, string>): string {
  const entries = Object.entries(amounts);
  return entries.length ? entries.map(([currency, amount]) => money(amount, currency)).join(", ") : "—";
}

export function analyticsPage(context: PageContext): Page {
  context.setTitle(t("admin.page.analytics"));
  const params = new URLSearchParams(location.search);
  const today = new Date();
  const from = h("input", { id: "stats-from", name: "from", type: "date", required: true, value: params.get("from") ?? isoDay(new Date(today.getTime() - (DEFAULT_DAYS - 1) * 86_400_000)) });
  const to = h("input", { id: "stats-to", name: "to", type: "date", required: true, value: params.get("to") ?? isoDay(today) });
  const form = h(
    "form",
    { class: "card filters", "aria-labelledby": "range-heading" },
    h("h2", { id: "range-heading", class: "visually-hidden" }, t("analytics.range")),
    h(
      "fieldset",
      {},
      h("legend", {}, t("analytics.range")),
      h(
        "div",
        { class: "filter-row" },
        h("div", { class: "field" }, h("label", { for: "stats-from" }, t("analytics.from")), from),
        h("div", { class: "field" }, h("label", { for: "stats-to" }, t("analytics.to")), to),
        h("div", { class: "field align-end" }, h("button", { type: "submit", class: "button button-primary" }, t("analytics.show"))),
      ),
    ),
  );
  const statsArea = h("div", { class: "stats", "aria-live": "polite", "aria-busy": "true" });
  const reportsArea = h("div", {});
  const reportMessage = h("div", {});
  render(
    context.main,
    h("h1", {}, t("analytics.heading")),
    form,
    statsArea,
    h("section", { class: "card", "aria-labelledby": "reports-heading" }, h("h2", { id: "reports-heading" }, t("analytics.reports")), reportMessage, context.isAdmin ? makeReportForm() : null, reportsArea),
  );

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams({ from: from.value, to: to.value });
    history.replaceState(null, "", `${location.pathname}?${query}`);
    void loadStats();
  });

  let statsRequest: AbortController | null = null;
  async function loadStats(): Promise<void> {
    if (from.value && to.value && from.value > to.value) {
      render(statsArea, errorAlert(null, t("analytics.invalid_range")));
      return;
    }
    statsRequest?.abort();
    const controller = new AbortController();
    statsRequest = controller;
    statsArea.setAttribute("aria-busy", "true");
    try {
      const stats = await session.request<Stats>("/analytics/stats", { query: { from: from.value, to: to.value, granularity: "day" }, signal: controller.signal });
      if (controller.signal.aborted) return;
      render(statsArea, ...statsView(stats));
    } catch (error) {
      if (controller.signal.aborted) return;
      render(statsArea, errorAlert(error));
    } finally {
      if (statsRequest === controller) statsArea.setAttribute("aria-busy", "false");
    }
  }

  function statsView(stats: Stats): HTMLElement[] {
    const summary = h(
      "section",
      { class: "card", "aria-labelledby": "summary-heading" },
      h("h2", { id: "summary-heading" }, t("analytics.summary")),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("analytics.orders")),
        h("dd", { "data-stat": "orders" }, number(stats.orders)),
        h("dt", {}, t("analytics.revenue")),
        h("dd", {}, moneyList(stats.revenue)),
        h("dt", {}, t("analytics.aov")),
        h("dd", {}, moneyList(stats.average_order_value)),
      ),
    );
    if (!stats.orders) return [summary, h("p", { class: "card" }, t("analytics.no_data"))];
    const perDay: Datum[] = stats.trend.map((p) => ({ label: shortDay(p.period), value: p.orders, text: number(p.orders) }));
    const currencies = Object.keys(stats.revenue).sort();
    const revenueCharts = currencies.map((currency) =>
      columnChart({
        wide: true,
        title: `${t("analytics.revenue_currency")}: ${currency}`,
        labelHeader: t("analytics.day"),
        valueHeader: `${t("analytics.revenue")} (${currency})`,
        data: stats.trend.map((p) => {
          const amount = p.revenue[currency] ?? "0";
          return { label: shortDay(p.period), value: Number(amount), text: money(amount, currency) };
        }),
        summary: `${t("analytics.revenue")} ${money(stats.revenue[currency] ?? "0", currency)}`,
      }),
    );
    const byStatus: Datum[] = STATUSES.filter((s) => stats.by_status[s]).map((s) => ({
      label: statusLabel(s),
      value: stats.by_status[s] ?? 0,
      text: number(stats.by_status[s] ?? 0),
      tone: `bar-${s}`,
    }));
    const products: Datum[] = stats.top_products.map((p) => ({ label: p.name, value: p.quantity, text: number(p.quantity) }));
    return [
      summary,
      h(
        "div",
        { class: "charts" },
        columnChart({
          wide: true,
          title: t("analytics.per_day"),
          labelHeader: t("analytics.day"),
          valueHeader: t("analytics.orders"),
          data: perDay,
          summary: `${t("analytics.orders")}: ${number(stats.orders)}`,
        }),
        ...revenueCharts,
        barChart({ title: t("analytics.status"), labelHeader: t("col.status"), valueHeader: t("analytics.orders"), data: byStatus }),
        barChart({ title: t("analytics.products"), labelHeader: t("col.product"), valueHeader: t("analytics.pieces"), data: products }),
      ),
    ];
  }

  async function loadReports(): Promise<void> {
    try {
      const reports = await session.request<Report[]>("/analytics/reports");
      render(reportsArea, reports.length ? reportsTable(reports) : h("p", {}, t("analytics.reports.empty")));
    } catch (error) {
      render(reportsArea, errorAlert(error));
    }
  }

  function reportsTable(reports: Report[]): HTMLTableElement {
    return h(
      "table",
      { class: "reports" },
      h("caption", { class: "visually-hidden" }, t("analytics.reports")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t("analytics.report.name")),
          h("th", { scope: "col" }, t("analytics.report.period")),
          h("th", { scope: "col" }, t("analytics.report.created")),
          h("th", { scope: "col", class: "num" }, t("analytics.report.size")),
        ),
      ),
      h(
        "tbody",
        {},
        reports.map((report) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, downloadButton(report)),
            h("td", {}, t(`period.${report.period}`)),
            h("td", {}, h("time", { datetime: machineTime(report.created_at) }, dateTime(report.created_at))),
            h("td", { class: "num" }, t("analytics.bytes", { count: report.size })),
          ),
        ),
      ),
    );
  }

  /** The download needs the bearer token, so it is fetched and saved from a Blob, not a plain link. */
  function downloadButton(report: Report): HTMLButtonElement {
    const button = h("button", { type: "button", class: "button-link", "aria-label": t("analytics.report.download", { name: report.name }) }, report.name);
    button.addEventListener("click", async () => {
      try {
        const text = await session.request<string>(`/analytics/reports/${encodeURIComponent(report.name)}`, {
          headers: { Accept: "text/plain, application/problem+json" },
        });
        const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
        const anchor = h("a", { href: url, download: report.name, hidden: true });
        document.body.append(anchor);
        anchor.click();
        anchor.remove();
        window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
      } catch (error) {
        render(reportMessage, errorAlert(error));
      }
    });
    return button;
  }

  function makeReportForm(): HTMLFormElement {
    const period = h(
      "select",
      { id: "report-period", name: "period" },
      PERIODS.map((p) => h("option", { value: p }, t(`period.${p}`))),
    );
    const submit = h("button", { type: "submit", class: "button button-primary" }, t("analytics.report.make"));
    const form = h(
      "form",
      { class: "filter-row make-report" },
      h("div", { class: "field" }, h("label", { for: "report-period" }, t("analytics.report.period_label")), period),
      h("div", { class: "field align-end" }, submit),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      try {
        const made = await session.request<Report>("/analytics/reports", { method: "POST", body: { period: period.value } });
        const text = t("analytics.report.made", { name: made.name });
        render(reportMessage, h("div", { class: "alert alert-success", role: "status" }, h("p", {}, text)));
        announce(text);
        await loadReports();
      } catch (error) {
        render(reportMessage, errorAlert(error, error instanceof ApiError && error.status === 403 ? t("admin_only.message") : undefined));
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  void loadStats();
  void loadReports();
  // Not reloaded on live events: the charts would jump under the reader ("Show statistics" does).
  return {
    dispose() {
      statsRequest?.abort();
    },
  };
}
