// The console's shell: the screens behind the hash routes, the company in the header, the count of
// documents that need attention.  Each screen is a module loaded when first opened.

import { get, tenant } from "./api.js";
import { errorBox, fill, h } from "./ui.js";

const SCREENS = {
  connection: () => import("./views/connection.js"),
  match: () => import("./views/match.js"),
  attention: () => import("./views/attention.js"),
  postings: () => import("./views/postings.js"),
  report: () => import("./views/report.js"),
  exchanges: () => import("./views/exchanges.js"),
  settings: () => import("./views/settings.js"),
};

const main = document.getElementById("main");
let renderSequence = 0;

/** "#/match/client?x=1" → {screen: "match", args: ["client"], query: URLSearchParams} */
function route() {
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [screen, ...args] = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { screen: SCREENS[screen] ? screen : "connection", args, query: new URLSearchParams(search) };
}

async function show() {
  const sequence = (renderSequence += 1);
  main.setAttribute("aria-busy", "true");
  const { screen, args, query } = route();
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.section === screen) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const view = h("section", { class: `screen screen-${screen}` });
  try {
    const module = await SCREENS[screen]();
    if (sequence !== renderSequence) return;
    fill(main, view);
    await module.render(view, { args, query, refreshShell });
  } catch (error) {
    if (sequence === renderSequence) fill(main, errorBox(error));
  }
  if (sequence === renderSequence) {
    main.dataset.rendered = location.hash; // the screen's data is on it (the browser tests wait for this)
    main.setAttribute("aria-busy", "false");
  }
}

/** The header's company name and the Needs attention count, read again after a change. */
export async function refreshShell() {
  const company = document.getElementById("company");
  const count = document.getElementById("attention-count");
  try {
    const [connection, summary] = await Promise.all([get("/connection"), get("/postings/summary")]);
    fill(
      company,
      connection.connected ? connection.company_name || connection.realm_id : "QuickBooks not connected",
      h("span", { class: "tenant" }, ` · ${tenant}`),
    );
    const waiting = (summary.by_state?.needs_attention || 0) + (summary.by_state?.failed || 0);
    count.textContent = String(waiting);
    count.hidden = waiting === 0;
    count.setAttribute("aria-label", `${waiting} documents`);
  } catch (error) {
    fill(company, error.status === 401 ? "Session ended" : tenant);
  }
}

if (!tenant) {
  main.setAttribute("aria-busy", "false");
  fill(
    main,
    h("h1", {}, "Open the console from your app"),
    h("p", {}, "This page needs a console link for one firm. Open it from your practice-management app's QuickBooks settings."),
  );
} else {
  // Each screen shown reads the header again: the count of what needs attention stays current.
  const showAll = () => {
    show();
    refreshShell();
  };
  window.addEventListener("hashchange", showAll);
  showAll();
}
