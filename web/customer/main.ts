import "../shared/base.css";
import { h, render, byId } from "../shared/dom";
import { languageSwitch } from "../shared/ui";

render(
  byId("app"),
  h("header", { class: "site-header" }, h("p", { class: "brand" }, "Orderflow"), languageSwitch()),
  h("main", { id: "main" }, h("h1", {}, "Your orders")),
);
