// English and Polish. The language comes from the browser unless the user picked one (that choice,
// and nothing else, is remembered in localStorage). The catalog below holds what both pages say and
// what the shared pieces (ui.ts, status.ts, orders.ts) show; each page adds its own messages with
// addMessages, where a page may also word a shared message its own way in one language.

export type Locale = "en" | "pl";
export const LOCALES: readonly Locale[] = ["en", "pl"];

/** A plain string, or plural forms chosen by Intl.PluralRules for the `count` parameter. */
type Message = string | Partial<Record<Intl.LDMLPluralRule, string>>;
export type Messages = Record<string, Message>;

const STORAGE_KEY = "orderflow.language";

const catalog: Record<Locale, Messages> = {
  en: {
    "language.label": "Language",
    "language.en": "English",
    "language.pl": "Polski",
    "status.new": "New",
    "status.paid": "Paid",
    "status.picking": "Picking",
    "status.packed": "Packed",
    "status.shipped": "Shipped",
    "status.delivered": "Delivered",
    "status.cancelled": "Cancelled",
    "dialog.cancel": "Go back",
    "error.network": "The server cannot be reached. Check your connection and try again.",
    "error.generic": "Something went wrong: {detail}",
    "error.reference": "Reference: {id}",
    "error.retry_after": "Too many attempts. Try again in {seconds} s.",
    "loading": "Loading…",
    "skip": "Skip to content",
    "signed_in_as": "Signed in as {email}",
    "signed_out": "You have signed out.",
    "field.password": "Password",
    "field.email": "Email",
    "field.required": "Fill in {field}.",
    "signout": "Sign out",
    "order.current": "Current status",
    "order.keep": "Keep order",
    "orders.count": { one: "{count} order", other: "{count} orders" },
    "col.order": "Order",
    "col.placed": "Placed",
    "col.customer": "Customer",
    "col.items": "Items",
    "col.total": "Total",
    "col.status": "Status",
    "col.product": "Product",
    "col.sku": "SKU",
    "col.quantity": "Quantity",
    "col.unit_price": "Unit price",
    "col.amount": "Amount",
    "order.heading": "Order {number}",
    "order.items": "Items",
    "order.total": "Total",
    "order.cancel": "Cancel order",
    "order.cancel_title": "Cancel order {number}?",
  },
  pl: {
    "language.label": "Język",
    "language.en": "English",
    "language.pl": "Polski",
    "status.new": "Nowe",
    "status.paid": "Opłacone",
    "status.picking": "Kompletowane",
    "status.packed": "Spakowane",
    "status.shipped": "Wysłane",
    "status.delivered": "Dostarczone",
    "status.cancelled": "Anulowane",
    "dialog.cancel": "Wróć",
    "error.network": "Brak połączenia z serwerem. Sprawdź połączenie i spróbuj ponownie.",
    "error.generic": "Coś poszło nie tak: {detail}",
    "error.reference": "Identyfikator: {id}",
    "error.retry_after": "Zbyt wiele prób. Spróbuj ponownie za {seconds} s.",
    "loading": "Ładowanie…",
    "skip": "Przejdź do treści",
    "signed_in_as": "Zalogowano jako {email}",
    "signed_out": "Wylogowano.",
    "field.password": "Hasło",
    "field.email": "E-mail",
    "field.required": "Wypełnij pole: {field}.",
    "signout": "Wyloguj się",
    "order.current": "Aktualny status",
    "order.keep": "Zachowaj zamówienie",
    "orders.count": { one: "{count} zamówienie", few: "{count} zamówienia", many: "{count} zamówień", other: "{count} zamówienia" },
    "col.order": "Zamówienie",
    "col.placed": "Złożone",
    "col.customer": "Klient",
    "col.items": "Pozycje",
    "col.total": "Razem",
    "col.status": "Status",
    "col.product": "Produkt",
    "col.sku": "SKU",
    "col.quantity": "Ilość",
    "col.unit_price": "Cena jednostkowa",
    "col.amount": "Kwota",
    "order.heading": "Zamówienie {number}",
    "order.items": "Pozycje",
    "order.total": "Razem",
    "order.cancel": "Anuluj zamówienie",
    "order.cancel_title": "Anulować zamówienie {number}?",
  },
};

let current: Locale = detect();
const listeners = new Set<(locale: Locale) => void>();

function stored(): Locale | null {
  try {
    const value = localStorage.getItem(STORAGE_KEY);
    return LOCALES.includes(value as Locale) ? (value as Locale) : null;
  } catch {
    return null; // storage disabled: the browser's language it is
  }
}

function detect(): Locale {
  const chosen = stored();
  if (chosen) return chosen;
  for (const language of navigator.languages ?? [navigator.language]) {
    const base = language.toLowerCase().split("-")[0];
    if (LOCALES.includes(base as Locale)) return base as Locale;
  }
  return "en";
}

export function locale(): Locale {
  return current;
}

/** The BCP 47 tag Intl formats with. */
export function intlLocale(): string {
  return current === "pl" ? "pl-PL" : "en-GB";
}

export function setLocale(locale: Locale): void {
  try {
    localStorage.setItem(STORAGE_KEY, locale);
  } catch {
    // not remembered, still switched
  }
  if (locale === current) return;
  current = locale;
  document.documentElement.lang = locale;
  listeners.forEach((listener) => listener(locale));
}

export function onLocaleChange(listener: (locale: Locale) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function addMessages(messages: Record<Locale, Messages>): void {
  for (const locale of LOCALES) Object.assign(catalog[locale], messages[locale]);
}

/** The message `key` in the current language with {name} parameters filled in. */
export function t(key: string, params: Record<string, string | number> = {}): string {
  const message = catalog[current][key] ?? catalog.en[key] ?? key;
  let text: string;
  if (typeof message === "string") {
    text = message;
  } else {
    const count = Number(params.count ?? 0);
    const form = new Intl.PluralRules(intlLocale()).select(count);
    text = message[form] ?? message.other ?? key;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? (name === "count" ? formatCount(Number(params[name])) : String(params[name])) : whole,
  );
}

function formatCount(count: number): string {
  return new Intl.NumberFormat(intlLocale()).format(count);
}

document.documentElement.lang = current;
