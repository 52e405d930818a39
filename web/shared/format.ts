// Amounts and dates in the chosen language's conventions.
import { intlLocale } from "./i18n";

/** A decimal string from the API ("249.90") with its currency; the string stays the source of truth. */
export function money(amount: string | number, currency: string): string {
  const value = typeof amount === "number" ? amount : Number(amount);
  try {
    return new Intl.NumberFormat(intlLocale(), { style: "currency", currency }).format(value);
  } catch {
    // An ISO code Intl does not know: the number and the code as they are.
    return `${new Intl.NumberFormat(intlLocale(), { minimumFractionDigits: 2 }).format(value)} ${currency}`;
  }
}

export function number(value: number, options: Intl.NumberFormatOptions = {}): string {
  return new Intl.NumberFormat(intlLocale(), options).format(value);
}

export function dateTime(iso: string): string {
  return new Intl.DateTimeFormat(intlLocale(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

export function date(iso: string): string {
  return new Intl.DateTimeFormat(intlLocale(), { dateStyle: "medium" }).format(new Date(iso));
}

/** For a <time datetime> attribute. */
export function machineTime(iso: string): string {
  return new Date(iso).toISOString();
}
