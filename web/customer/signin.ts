// Signed out: follow one order by its number and email, or sign in to an account.
import { ApiError } from "../shared/api";
import { h, render } from "../shared/dom";
import { t } from "../shared/i18n";
import { session, type Credentials } from "../shared/session";
import { errorAlert, field, type Field } from "../shared/ui";
import type { View } from "./view";

export function signInView(main: HTMLElement, notice: string | null, done: () => void): View {
  const render_ = () => {
    render(
      main,
      h("h1", { tabindex: -1 }, t("track.heading")),
      notice ? h("div", { class: "alert alert-info", role: "status" }, h("p", {}, notice)) : null,
      h("div", { class: "signin-grid" }, followForm(done), accountForm(done)),
    );
  };
  return { render: render_ };
}

function followForm(done: () => void): HTMLElement {
  const number = field({
    label: t("field.order_number"),
    name: "order_number",
    autocomplete: "off",
    required: true,
    hint: t("field.order_number.hint"),
  });
  const email = field({ label: t("field.email"), name: "follow_email", type: "email", autocomplete: "email", required: true });
  return form(
    "follow",
    t("follow.heading"),
    t("follow.intro"),
    [number, email],
    t("follow.submit"),
    () => ({ order_number: number.input.value.trim(), email: email.input.value.trim() }),
    t("follow.failed"),
    done,
  );
}

function accountForm(done: () => void): HTMLElement {
  const email = field({ label: t("field.email"), name: "account_email", type: "email", autocomplete: "username", required: true });
  const password = field({
    label: t("field.password"),
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  return form(
    "account",
    t("account.heading"),
    t("account.intro"),
    [email, password],
    t("account.submit"),
    () => ({ email: email.input.value.trim(), password: password.input.value }),
    t("account.failed"),
    done,
  );
}

/** One sign-in form: our own required-field messages (not the browser's bubbles), then POST /auth/session. */
function form(
  name: string,
  heading: string,
  intro: string,
  fields: Field[],
  submitLabel: string,
  credentials: () => Credentials,
  rejected: string,
  done: () => void,
): HTMLElement {
  const headingId = `${name}-heading`;
  const messages = h("div", { class: "form-messages" });
  const submit = h("button", { type: "submit", class: "button button-primary" }, submitLabel);
  const element = h(
    "form",
    { class: "card signin-form", "aria-labelledby": headingId, novalidate: true, id: `${name}-form` },
    h("h2", { id: headingId }, heading),
    h("p", { class: "muted" }, intro),
    messages,
    fields.map((f) => f.element),
    h("div", { class: "actions" }, submit),
  );
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    messages.replaceChildren();
    let firstInvalid: HTMLInputElement | null = null;
    for (const f of fields) {
      const empty = f.input.value.trim() === "";
      const label = f.element.querySelector("label")?.textContent ?? "";
      f.setError(empty ? t("field.required", { field: label }) : null);
      if (empty) firstInvalid ??= f.input;
    }
    if (firstInvalid) {
      firstInvalid.focus();
      return;
    }
    submit.disabled = true;
    element.setAttribute("aria-busy", "true");
    try {
      await session.signIn(credentials());
      done();
    } catch (error) {
      const text = error instanceof ApiError && (error.status === 401 || error.status === 422) ? rejected : undefined;
      messages.replaceChildren(errorAlert(error, text));
      fields[fields.length - 1]?.input.select();
    } finally {
      submit.disabled = false;
      element.removeAttribute("aria-busy");
    }
  });
  return element;
}
