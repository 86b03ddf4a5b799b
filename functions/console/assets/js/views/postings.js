// Posting log: every document's posting, filtered by state, kind and dates (kept in the hash's query,
// so a link reproduces the view), the counts per kind and state, and each document's attempts.

import { get } from "../api.js";
import {
  DOCUMENT_LABELS,
  STATE_LABELS,
  errorBox,
  errorText,
  field,
  fill,
  formatDate,
  formatTime,
  h,
  moreButton,
  reasonText,
  stateBadge,
  table,
} from "../ui.js";

const KINDS = ["invoice", "payment", "credit_memo", "client", "credit_application"];
const FILTERS = ["state", "kind", "from", "to", "posted_from", "posted_to"];
const PAGE = 100;

function select(name, value, options) {
  return h(
    "select",
    { name },
    h("option", { value: "" }, "All"),
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
  );
}

function dateInput(name, value) {
  return h("input", { type: "date", name, value: value || "" });
}

function summaryTable(summary) {
  const kinds = Object.keys(summary.by_kind || {}).filter((k) => Object.values(summary.by_kind[k]).some((n) => n > 0));
  const states = Object.keys(STATE_LABELS).filter((s) => (summary.by_state?.[s] || 0) > 0);
  if (!kinds.length) return h("p", { class: "empty" }, "No documents yet.");
  const count = (kind, state, n) =>
    n ? h("a", { href: `#/postings?kind=${kind}&state=${state}`, "aria-label": `${n} ${DOCUMENT_LABELS[kind] || kind} ${STATE_LABELS[state]}` }, String(n)) : "0";
  const rows = kinds.map((kind) => ({ kind, states: summary.by_kind[kind] }));
  rows.push({ kind: "", states: summary.by_state, total: true });
  return table(
    [
      { label: "Kind", value: (r) => (r.total ? h("strong", {}, "All") : DOCUMENT_LABELS[r.kind] || r.kind) },
      ...states.map((s) => ({
        label: STATE_LABELS[s] || s,
        class: "num",
        value: (r) => (r.total ? String(r.states[s] || 0) : count(r.kind, s, r.states[s] || 0)),
      })),
      {
        label: "Total",
        class: "num",
        value: (r) => String(Object.values(r.states).reduce((a, n) => a + n, 0)),
      },
    ],
    rows,
    { caption: `Documents by kind and state (${summary.total} in all)` },
  );
}

function attemptsTable(detail) {
  const attempts = detail.attempt_log || [];
  return h(
    "div",
    { class: "attempts" },
    detail.last_error ? h("p", { class: "error" }, "Last error: ", errorText(detail.last_error)) : null,
    (detail.notes || []).length ? h("ul", { class: "plain" }, detail.notes.map((n) => h("li", {}, reasonText(n)))) : null,
    table(
      [
        { label: "#", value: (a) => String(a.number), class: "num" },
        { label: "Version", value: (a) => String(a.version), class: "num" },
        { label: "Outcome", value: (a) => h("span", { class: `badge outcome-${a.outcome}` }, a.outcome.replaceAll("_", " ")) },
        { label: "Started", value: (a) => formatTime(a.started_at) },
        { label: "Finished", value: (a) => formatTime(a.finished_at) },
        { label: "HTTP", value: (a) => (a.http_status ? String(a.http_status) : ""), class: "num" },
        { label: "intuit_tid", value: (a) => h("code", {}, a.intuit_tid || a.fault?.intuit_tid || "") },
        { label: "QuickBooks said", value: (a) => (a.fault ? errorText(a.fault) : "") },
      ],
      attempts,
      { caption: `Attempts of ${DOCUMENT_LABELS[detail.kind] || detail.kind} ${detail.app_id}`, stack: true, empty: "No attempt yet: the document was never sent to QuickBooks." },
    ),
  );
}

function detailsButton(entry, columns) {
  const label = `Details of ${DOCUMENT_LABELS[entry.kind] || entry.kind} ${entry.app_id}`;
  const button = h("button", { type: "button", class: "small secondary", "aria-expanded": "false", "aria-label": label }, "Details");
  button.addEventListener("click", async () => {
    const row = button.closest("tr");
    const open = row.nextElementSibling?.classList.contains("details") ? row.nextElementSibling : null;
    if (open) {
      open.remove();
      button.setAttribute("aria-expanded", "false");
      return;
    }
    const cell = h("td", { colspan: String(columns) }, h("p", { class: "muted" }, "Loading attempts…"));
    row.after(h("tr", { class: "details" }, cell));
    button.setAttribute("aria-expanded", "true");
    try {
      fill(cell, attemptsTable(await get(`/postings/${entry.kind}/${encodeURIComponent(entry.app_id)}`)));
    } catch (error) {
      fill(cell, errorBox(error));
    }
  });
  return button;
}

const COLUMNS = [
  { label: "Kind", value: (e) => DOCUMENT_LABELS[e.kind] || e.kind },
  { label: "App id", value: (e) => e.app_id, class: "nowrap" },
  { label: "Version", value: (e) => String(e.version), class: "num" },
  { label: "Date", value: (e) => formatDate(e.txn_date), class: "nowrap" },
  { label: "State", value: (e) => stateBadge(e.state) },
  { label: "QBO id", value: (e) => e.qbo_id || "" },
  { label: "Attempts", value: (e) => String(e.attempts ?? 0), class: "num" },
  { label: "Posted at", value: (e) => formatTime(e.posted_at) },
  {
    label: "Reasons and notes",
    class: "wide",
    value: (e) => {
      const lines = [...(e.reasons || []), ...(e.notes || [])].map((r) => h("li", {}, reasonText(r)));
      if (e.last_error) lines.push(h("li", { class: "qbo-error" }, errorText(e.last_error)));
      return lines.length ? h("ul", { class: "plain" }, lines) : "";
    },
  },
];

export async function render(view, { query }) {
  const current = Object.fromEntries(FILTERS.map((k) => [k, query.get(k) || ""]));
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filters" },
    field("State", select("state", current.state, Object.entries(STATE_LABELS))),
    field("Kind", select("kind", current.kind, KINDS.map((k) => [k, DOCUMENT_LABELS[k]]))),
    field("Transaction date from", dateInput("from", current.from)),
    field("Transaction date to", dateInput("to", current.to)),
    field("Posted from", dateInput("posted_from", current.posted_from)),
    field("Posted to", dateInput("posted_to", current.posted_to)),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Show"), h("a", { href: "#/postings", class: "button secondary" }, "Clear")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) params.set(key, String(value));
    const hash = `#/postings${params.toString() ? `?${params}` : ""}`;
    if (location.hash === hash) load();
    else location.hash = hash;
  });
  const summaryBox = h("div", { class: "summary" });
  const results = h("div", { class: "results" });
  view.append(
    h("h1", {}, "Posting log"),
    summaryBox,
    h("h2", {}, "Documents"),
    form,
    h(
      "p",
      { class: "hint" },
      "Transaction date: the document's own date in your app. Posted: the day (UTC) QBO Link posted it to QuickBooks. Without a state, kind or posting date only dated documents are listed (clients have no date: pick the kind Client).",
    ),
    results,
  );

  get("/postings/summary")
    .then((summary) => fill(summaryBox, summaryTable(summary)))
    .catch((error) => fill(summaryBox, errorBox(error)));

  const filters = Object.fromEntries(Object.entries(current).filter(([, v]) => v));
  let token = null;
  let shown = 0;

  /** The next PAGE entries: a filtered page may be short, even empty, with a next token. */
  async function nextEntries() {
    const found = [];
    for (let calls = 0; calls < 20; calls += 1) {
      const data = await get("/postings", { ...filters, page_token: token, limit: PAGE });
      found.push(...(data.entries || []));
      token = data.next_page_token;
      if (!token || found.length >= PAGE) break;
    }
    return found;
  }

  function rows(entries) {
    const cols = [...COLUMNS, { label: "", value: (e) => detailsButton(e, COLUMNS.length + 1) }];
    return table(cols, entries, {
      caption: "Postings",
      stack: true,
      empty: "No document matches these filters.",
      rowAttrs: (e) => ({ dataset: { kind: e.kind, app: e.app_id } }),
    });
  }

  async function load() {
    token = null;
    shown = 0;
    fill(results, h("p", { class: "muted" }, "Loading…"));
    try {
      const entries = await nextEntries();
      shown = entries.length;
      const status = h("p", { class: "result-count", "aria-live": "polite" });
      const list = rows(entries);
      const tbody = list.querySelector("tbody");
      const say = () => {
        status.textContent = `${shown} document${shown === 1 ? "" : "s"}${token ? " so far" : ""}.`;
      };
      say();
      fill(results, status, list);
      if (token && tbody) {
        results.append(
          h(
            "div",
            { class: "actions" },
            moreButton("Load more", async () => {
              const more = await nextEntries();
              shown += more.length;
              const extra = rows(more).querySelector("tbody");
              if (extra) tbody.append(...extra.children);
              say();
              return Boolean(token);
            }),
          ),
        );
      }
    } catch (error) {
      fill(results, errorBox(error));
    }
  }

  await load();
}
