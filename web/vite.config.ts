// Two pages: / (customer page) and /admin/ (admin panel), built to dist/ for the gateway to serve.
// Nothing inline (CSP script-src 'self'): scripts and styles are files under /assets/ with hashed
// names, and no asset is inlined as a data: URL.
import { defineConfig } from "vite";

const page = (path: string) => new URL(path, import.meta.url).pathname;

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    assetsInlineLimit: 0,
    rolldownOptions: {
      input: {
        customer: page("./index.html"),
        admin: page("./admin/index.html"),
      },
    },
  },
  // `npm run dev`: the API through the gateway of a running `make run`.
  server: {
    proxy: Object.fromEntries(
      ["/auth", "/orders", "/notifications", "/analytics"].map((prefix) => [
        prefix,
        { target: "http://127.0.0.1:8088", ws: true },
      ]),
    ),
  },
});
