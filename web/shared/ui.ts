// Pieces both pages use: the language switch, an error message, a confirmation dialog.
import { ApiError } from "./api";
import { h, uniqueId } from "./dom";
import { LOCALES, locale, onLocaleChange, setLocale, t, type Locale } from "./i18n";

/** A labelled <select> that switches the language (and remembers the choice). */
export function languageSwitch(): HTMLElement {
  const id = uniqueId("language");
  const label = h("label", { for: id }, t("language.label"));
  const select = h("select", { id, name: "language" });
  const fill = () => {
    label.textContent = t("language.label");
    select.replaceChildren(
      ...LOCALES.map((code) => h("option", { value: code, lang: code, selected: code === locale() }, t(`language.${code}`))),
    );
  };
  fill();
  select.addEventListener("change", () => setLocale(select.value as Locale));
  onLocaleChange(fill);
  return h("div", { class: "language-switch" }, label, select);
}

/** The text to show a person for a failed call. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.isNetwork) return t("error.network");
    if (error.status === 429 && error.retryAfter) return t("error.retry_after", { seconds: error.retryAfter });
    return t("error.generic", { detail: error.detail || error.title });
  }
  return t("error.generic", { detail: error instanceof Error ? error.message : String(error) });
}

/** An alert box (role=alert: read out when it appears); with the request id to quote when there is one. */
export function errorAlert(error: unknown, text = errorText(error)): HTMLElement {
  const requestId = error instanceof ApiError ? error.requestId : null;
  return h(
    "div",
    { class: "alert alert-error", role: "alert" },
    h("p", {}, text),
    requestId && error instanceof ApiError && error.status >= 500 ? h("p", { class: "muted" }, t("error.reference", { id: requestId })) : null,
  );
}

export interface ConfirmOptions {
  title: string;
  message: string;
  /** The confirming button's name: what it does ("Cancel order"), never "OK". */
  confirm: string;
  /** The button that leaves things as they are. */
  dismiss?: string;
  danger?: boolean;
}

/**
 * A modal <dialog> (focus moves in, Escape closes, focus returns to where it was).
 * Resolves true only when the confirming button was pressed.
 */
export function confirmDialog(options: ConfirmOptions): Promise<boolean> {
  const titleId = uniqueId("dialog-title");
  const messageId = uniqueId("dialog-message");
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const dismiss = h("button", { type: "submit", value: "dismiss", class: "button", autofocus: true }, options.dismiss ?? t("dialog.cancel"));
  const confirm = h("button", { type: "submit", value: "confirm", class: options.danger ? "button button-danger" : "button button-primary" }, options.confirm);
  const dialog = h(
    "dialog",
    { class: "dialog", "aria-labelledby": titleId, "aria-describedby": messageId },
    h(
      "form",
      { method: "dialog" },
      h("h2", { id: titleId }, options.title),
      h("p", { id: messageId }, options.message),
      h("div", { class: "dialog-actions" }, dismiss, confirm),
    ),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
      opener?.focus();
    });
    dialog.showModal();
  });
}

export interface FieldOptions {
  label: string;
  name: string;
  type?: string;
  autocomplete?: string;
  required?: boolean;
  hint?: string;
  value?: string;
  inputmode?: string;
}

export interface Field {
  element: HTMLElement;
  input: HTMLInputElement;
  /** Show (or with null, clear) a message tied to the input (aria-invalid, aria-describedby). */
  setError(message: string | null): void;
}

/** A labelled input with an optional hint and an error slot, wired for screen readers. */
export function field(options: FieldOptions): Field {
  const id = `field-${options.name}`;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const input = h("input", {
    id,
    name: options.name,
    type: options.type ?? "text",
    autocomplete: options.autocomplete,
    required: options.required ?? false,
    inputmode: options.inputmode,
    value: options.value,
    "aria-describedby": options.hint ? hintId : null,
  });
  const error = h("p", { id: errorId, class: "field-error", hidden: true });
  const element = h(
    "div",
    { class: "field" },
    h("label", { for: id }, options.label),
    options.hint ? h("p", { id: hintId, class: "hint" }, options.hint) : null,
    input,
    error,
  );
  const setError = (message: string | null) => {
    error.textContent = message ?? "";
    error.hidden = message === null;
    input.setAttribute("aria-invalid", message === null ? "false" : "true");
    const described = [options.hint ? hintId : null, message === null ? null : errorId].filter(Boolean).join(" ");
    if (described) input.setAttribute("aria-describedby", described);
    else input.removeAttribute("aria-describedby");
  };
  return { element, input, setError };
}

/** Put `message` into the page's polite live region, for screen readers. */
export function announce(message: string): void {
  let region = document.getElementById("announcer");
  if (!region) {
    region = h("div", { id: "announcer", class: "visually-hidden", "aria-live": "polite", "aria-atomic": "true" });
    document.body.append(region);
  }
  region.textContent = "";
  // A fresh text node in a later task is read out even when the text repeats.
  const target = region;
  window.setTimeout(() => (target.textContent = message), 50);
}
