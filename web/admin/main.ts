// Placeholder until the admin panel lands (helper admin-panel replaces this directory).
import "../shared/base.css";
import { h, render, byId } from "../shared/dom";

render(
  byId("app"),
  h("header", { class: "site-header" }, h("p", { class: "brand" }, "Orderflow admin")),
  h("main", { id: "main" }, h("h1", {}, "Admin panel"), h("p", {}, "Coming soon.")),
);
