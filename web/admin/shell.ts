// What every admin page shares: the context a page is rendered with, and the page's hooks.
import type { Me } from "../shared/session";
import type { Notification } from "./live";

export interface PageContext {
  main: HTMLElement;
  me: Me;
  isAdmin: boolean;
  /** The document title, e.g. "Orders — Orderflow admin". */
  setTitle(text: string): void;
}

export interface Page {
  /** A notification came in over the live feed while this page is open; true when the page
   * shows that very change (the open order reloaded), so it does not count as unseen. */
  onLive?(notification: Notification): boolean | void;
  /** The page is left: stop timers and requests. */
  dispose?(): void;
}

export const STAFF_ROLES = ["admin", "warehouse"];

export function isStaff(me: Me): boolean {
  return me.roles.some((role) => STAFF_ROLES.includes(role));
}
