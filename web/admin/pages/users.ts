// Users and roles (/admin/users), admins only: every account (GET /auth/users) with one toggle
// button per role, which grants or revokes it (PUT /auth/users/{id}/roles; that user's sessions end).
import { ApiError } from "../../shared/api";
import { h, render } from "../../shared/dom";
import { t } from "../../shared/i18n";
import { session } from "../../shared/session";
import { announce, errorAlert } from "../../shared/ui";
import type { Page, PageContext } from "../shell";

interface User {
  id: string;
  email: string;
  name: string;
  roles: string[];
  email_verified: boolean;
}

const ROLES = ["admin", "warehouse", "customer"];

export function usersPage(context: PageContext): Page {
  context.setTitle(t("admin.page.users"));
  const message = h("div", { class: "message-slot" });
  const list = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, t("loading")));
  render(context.main, h("h1", {}, t("users.heading")), h("p", { class: "muted" }, t("users.note")), message, list);

  async function load(focusId?: string): Promise<void> {
    try {
      const users = await session.request<User[]>("/auth/users");
      render(list, table(users));
      list.setAttribute("aria-busy", "false");
      if (focusId) list.querySelector<HTMLElement>(`[data-focus-id="${focusId}"]`)?.focus();
    } catch (error) {
      render(list, errorAlert(error));
    }
  }

  function table(users: User[]): HTMLTableElement {
    return h(
      "table",
      { class: "users card" },
      h("caption", {}, t("users.table")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t("users.name")),
          h("th", { scope: "col" }, t("users.email")),
          h("th", { scope: "col" }, t("users.verified")),
          h("th", { scope: "col" }, t("users.roles")),
          h("th", { scope: "col" }, t("users.change")),
        ),
      ),
      h(
        "tbody",
        {},
        users.map((user) =>
          h(
            "tr",
            { "data-user-email": user.email },
            h("th", { scope: "row" }, user.name),
            h("td", {}, user.email),
            h("td", {}, user.email_verified ? t("users.yes") : t("users.no")),
            h("td", { class: "roles" }, user.roles.map((role) => h("span", { class: `role role-${role}` }, t(`role.${role}`)))),
            h("td", {}, h("div", { class: "role-actions" }, ROLES.map((role) => roleButton(user, role)))),
          ),
        ),
      ),
    );
  }

  function roleButton(user: User, role: string): HTMLButtonElement {
    const has = user.roles.includes(role);
    const focusId = `${user.id}-${role}`;
    const params = { role: t(`role.${role}`), name: user.name };
    const button = h(
      "button",
      {
        type: "button",
        class: has ? "button button-small revoke" : "button button-small grant",
        "aria-label": t(has ? "users.revoke" : "users.grant", params),
        "data-focus-id": focusId,
        "data-role": role,
      },
      t(has ? "users.revoke_short" : "users.grant_short", params),
    );
    button.addEventListener("click", async () => {
      const roles = has ? user.roles.filter((r) => r !== role) : [...user.roles, role];
      if (!roles.length) {
        render(message, errorAlert(null, t("users.last_role")));
        return;
      }
      button.disabled = true;
      try {
        await session.request(`/auth/users/${encodeURIComponent(user.id)}/roles`, { method: "PUT", body: { roles } });
        const text = has ? t("users.revoked", { name: user.name, role: t(`role.${role}`) }) : t("users.granted", { name: user.name, role: t(`role.${role}`) });
        render(message, h("div", { class: "alert alert-success", role: "status" }, h("p", {}, text)));
        announce(text);
      } catch (error) {
        render(message, errorAlert(error, error instanceof ApiError && error.status === 403 ? t("admin_only.message") : undefined));
      }
      await load(focusId);
    });
    return button;
  }

  void load();
  return {};
}
