// Charts drawn as SVG, each readable without seeing it: the SVG is role="img" with a <title> and a
// <desc> that sums it up, and the same figures are in a data table under it.
import { h, uniqueId } from "../shared/dom";
import { number } from "../shared/format";
import { t } from "../shared/i18n";

const SVG = "http://www.w3.org/2000/svg";

function s(tag: string, attrs: Record<string, string | number> = {}, ...children: (Node | string)[]): SVGElement {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child);
  return element;
}

export interface Datum {
  label: string;
  value: number;
  /** The value as people read it (a formatted amount, a count). */
  text: string;
  /** A CSS class for the bar, e.g. a status colour. */
  tone?: string;
}

export interface ChartOptions {
  /** Across the whole width (a series over time). */
  wide?: boolean;
  title: string;
  /** Column headers of the data table. */
  labelHeader: string;
  valueHeader: string;
  data: Datum[];
  /** One sentence for screen readers; built from the data when not given. */
  summary?: string;
}

/** A section with a heading, the chart and its data table. */
function frame(options: ChartOptions, drawing: SVGElement, titleId: string, descId: string): HTMLElement {
  const headingId = uniqueId("chart-heading");
  const table = h(
    "table",
    {},
    h("caption", {}, t("analytics.table", { title: options.title })),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, options.labelHeader), h("th", { scope: "col", class: "num" }, options.valueHeader))),
    h(
      "tbody",
      {},
      options.data.map((d) => h("tr", {}, h("th", { scope: "row" }, d.label), h("td", { class: "num" }, d.text))),
    ),
  );
  drawing.setAttribute("role", "img");
  drawing.setAttribute("aria-labelledby", `${titleId} ${descId}`);
  return h(
    "section",
    { class: options.wide ? "card chart wide" : "card chart", "aria-labelledby": headingId },
    h("h2", { id: headingId }, options.title),
    drawing,
    h("details", { class: "chart-data" }, h("summary", {}, t("analytics.table", { title: options.title })), table),
  );
}

function describe(options: ChartOptions): string {
  if (options.summary) return options.summary;
  const top = [...options.data].sort((a, b) => b.value - a.value).slice(0, 5);
  return top.map((d) => `${d.label} ${d.text}`).join("; ");
}

function labelled(options: ChartOptions): { titleId: string; descId: string; head: SVGElement[] } {
  const titleId = uniqueId("chart-title");
  const descId = uniqueId("chart-desc");
  return {
    titleId,
    descId,
    head: [s("title", { id: titleId }, options.title), s("desc", { id: descId }, describe(options))],
  };
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Horizontal bars: one row per datum, label on the left, value at the bar's end. */
export function barChart(options: ChartOptions): HTMLElement {
  const { titleId, descId, head } = labelled(options);
  const rowHeight = 28;
  const labelWidth = 150;
  const valueWidth = 70;
  const width = 520;
  const barSpace = width - labelWidth - valueWidth;
  const height = Math.max(1, options.data.length) * rowHeight + 10;
  const max = Math.max(1, ...options.data.map((d) => d.value));
  const rows = options.data.map((d, index) => {
    const y = 5 + index * rowHeight;
    const length = Math.max(d.value > 0 ? 2 : 0, (d.value / max) * barSpace);
    return s(
      "g",
      {},
      s("text", { x: labelWidth - 8, y: y + rowHeight / 2, "text-anchor": "end", "dominant-baseline": "middle", class: "chart-label" }, clip(d.label, 20)),
      s("rect", { x: labelWidth, y: y + 4, width: length.toFixed(1), height: rowHeight - 8, rx: 3, class: `chart-bar ${d.tone ?? ""}` }),
      s("text", { x: labelWidth + length + 6, y: y + rowHeight / 2, "dominant-baseline": "middle", class: "chart-value" }, d.text),
    );
  });
  const drawing = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", preserveAspectRatio: "xMinYMin meet" }, ...head, ...rows);
  return frame(options, drawing, titleId, descId);
}

/** Vertical columns over time (one per period), with a light grid and a few period labels. */
export function columnChart(options: ChartOptions): HTMLElement {
  const { titleId, descId, head } = labelled(options);
  const width = 1000;
  const height = 260;
  const left = 64;
  const bottom = 36;
  const top = 12;
  const plotWidth = width - left - 8;
  const plotHeight = height - top - bottom;
  const max = niceCeiling(Math.max(...options.data.map((d) => d.value)));
  const step = plotWidth / Math.max(1, options.data.length);
  const gap = Math.min(4, step * 0.2);
  const parts: SVGElement[] = [];
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotHeight * (1 - fraction);
    const value = max * fraction;
    parts.push(
      s("line", { x1: left, x2: width - 8, y1: y, y2: y, class: "chart-grid" }),
      s("text", { x: left - 6, y, "text-anchor": "end", "dominant-baseline": "middle", class: "chart-axis" }, formatTick(value)),
    );
  }
  const labelEvery = Math.max(1, Math.ceil(options.data.length / 8));
  options.data.forEach((d, index) => {
    const barHeight = (d.value / max) * plotHeight;
    const x = left + index * step + gap / 2;
    parts.push(
      s("rect", { x: x.toFixed(1), y: (top + plotHeight - barHeight).toFixed(1), width: Math.max(1, step - gap).toFixed(1), height: barHeight.toFixed(1), class: `chart-bar ${d.tone ?? ""}` }, s("title", {}, `${d.label}: ${d.text}`)),
    );
    if (index % labelEvery === 0) {
      parts.push(s("text", { x: (x + (step - gap) / 2).toFixed(1), y: height - bottom + 16, "text-anchor": "middle", class: "chart-axis" }, d.label));
    }
  });
  const drawing = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", preserveAspectRatio: "xMinYMin meet" }, ...head, ...parts);
  return frame(options, drawing, titleId, descId);
}

/** The smallest of 1, 2, 2.5, 5 × 10^k at or above `value` (an axis that ends on a round number). */
function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * power >= value) ?? 10;
  return step * power;
}

function formatTick(value: number): string {
  return number(value, { maximumFractionDigits: value < 10 && !Number.isInteger(value) ? 1 : 0 });
}
