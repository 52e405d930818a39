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
