// Transactions report: invoices, payments and credit memos by transaction date and/or posting date,
// the API's totals per kind (to the cent: amounts stay strings), every page loaded before the CSV.

import { pages } from "../api.js";
import {
  DOCUMENT_LABELS,
  csvCell,
  download,
  errorBox,
  field,
  fill,
  formatDate,
  formatMoney,
  formatTime,
  h,
  stateBadge,
  table,
} from "../ui.js";

const PAGE = 1000;
const MAX_PAGES = 50;
const SHOWN = 500; // rows drawn on screen; the CSV has them all
const RANGE = ["txn_from", "txn_to", "posted_from", "posted_to"];
const KINDS = ["invoice", "payment", "credit_memo"];

function iso(day) {
  return `${day.getFullYear()}-${String(day.getMonth() + 1).padStart(2, "0")}-${String(day.getDate()).padStart(2, "0")}`;
}

/** "1234.5" → 123450 (integer cents, never a float); null when it is no amount. */
export function cents(value) {
  const match = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(String(value ?? "").trim());
  if (!match) return null;
  const whole = BigInt(match[2]) * 100n + BigInt((match[3] || "0").padEnd(2, "0"));
  return match[1] ? -whole : whole;
}

function amount(cent) {
  const negative = cent < 0n;
  const abs = negative ? -cent : cent;
  return `${negative ? "-" : ""}${abs / 100n}.${String(abs % 100n).padStart(2, "0")}`;
}

const COLUMNS = [
  { label: "Kind", value: (d) => DOCUMENT_LABELS[d.kind] || d.kind },
  { label: "Number", value: (d) => d.number || d.id },
  { label: "Date", value: (d) => formatDate(d.date), class: "nowrap" },
  { label: "Client", value: (d) => d.client_id || "" },
  { label: "Total", value: (d) => formatMoney(d.total), class: "num" },
  { label: "State", value: (d) => stateBadge(d.state) },
  { label: "QBO id", value: (d) => d.qbo_id || "" },
  { label: "Posted at", value: (d) => formatTime(d.posted_at) },
];

function totalsTable(totals) {
  const kinds = KINDS.filter((k) => totals[k]).concat(Object.keys(totals).filter((k) => !KINDS.includes(k)));
  return table(
    [
      { label: "Kind", value: (k) => DOCUMENT_LABELS[k] || k },
      { label: "Count", value: (k) => String(totals[k].count), class: "num" },
      { label: "Total", value: (k) => formatMoney(totals[k].total), class: "num" },
      { label: "Posted count", value: (k) => String(totals[k].posted_count), class: "num" },
      { label: "Posted total", value: (k) => formatMoney(totals[k].posted_total), class: "num" },
    ],
    kinds,
    { caption: "Totals per kind (over the whole range)", stack: true, rowAttrs: (k) => ({ dataset: { kind: k } }) },
  );
}

/** The rows against the API's totals, in integer cents: a difference means a page went missing. */
function mismatch(documents, totals) {
  const sums = {};
  for (const d of documents) {
    const s = (sums[d.kind] ||= { count: 0, total: 0n });
    s.count += 1;
    s.total += cents(d.total) ?? 0n;
  }
  return Object.entries(totals).filter(([kind, t]) => (sums[kind]?.count || 0) !== t.count || amount(sums[kind]?.total || 0n) !== amount(cents(t.total) ?? 0n));
}

function csv(documents, totals) {
  const line = (cells) => cells.map(csvCell).join(",");
  const lines = [line(["Kind", "App id", "Number", "Date", "Client", "Total", "State", "QBO id", "Posted at"])];
  for (const d of documents) {
    lines.push(line([d.kind, d.id, d.number, d.date, d.client_id, d.total, d.state, d.qbo_id, d.posted_at]));
  }
  lines.push("", line(["Totals"]), line(["Kind", "Count", "Total", "Posted count", "Posted total"]));
  for (const [kind, t] of Object.entries(totals)) lines.push(line([kind, t.count, t.total, t.posted_count, t.posted_total]));
  return `${lines.join("\r\n")}\r\n`;
}

export async function render(view, { query }) {
  const today = new Date();
  const given = RANGE.some((k) => query.get(k));
  const values = {
    txn_from: given ? query.get("txn_from") || "" : iso(new Date(today.getFullYear(), today.getMonth(), 1)),
    txn_to: given ? query.get("txn_to") || "" : iso(today),
    posted_from: query.get("posted_from") || "",
    posted_to: query.get("posted_to") || "",
  };
  const input = (name) => h("input", { type: "date", name, value: values[name] });
  const unposted = h("input", { type: "checkbox", name: "include_unposted", value: "true", checked: query.get("include_unposted") === "true" });
  const run = h("button", { type: "submit" }, "Run");
  const form = h(
    "form",
    { "aria-label": "Report range" },
    h(
      "div",
      { class: "columns ranges" },
      h(
      "fieldset",
      {},
      h("legend", {}, "Transaction date"),
      h("p", { class: "hint" }, "The date on the document in your app (invoice date, payment date)."),
      h("div", { class: "filters" }, field("From", input("txn_from")), field("To", input("txn_to"))),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Posting date"),
      h("p", { class: "hint" }, "The day (UTC) QBO Link posted the document to QuickBooks. Give either range, or both."),
      h("div", { class: "filters" }, field("From", input("posted_from")), field("To", input("posted_to"))),
    ),
    ),
    h("label", { class: "check" }, unposted, "Include unposted documents (waiting, failed, skipped…)"),
    h("div", { class: "actions" }, run),
  );
  const csvButton = h("button", { type: "button", class: "secondary", disabled: true }, "Download CSV");
  const status = h("p", { class: "report-status", "aria-live": "polite" });
  const results = h("div", { class: "results" });
  view.append(h("h1", {}, "Transactions report"), form, h("div", { class: "toolbar" }, csvButton, status), results);

  let report = null;
  csvButton.addEventListener("click", () => {
    if (!report) return;
    const from = report.range.txn_from || report.range.posted_from || "start";
    const to = report.range.txn_to || report.range.posted_to || "today";
    download(`transactions-${from}-${to}.csv`, csv(report.documents, report.totals));
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) params.set(key, String(value));
    if (!RANGE.some((k) => params.get(k))) {
      fill(results, errorBox(new Error("Give a transaction-date range or a posting-date range (or both).")));
      return;
    }
    const hash = `#/report?${params}`;
    if (location.hash === hash) load(params);
    else location.hash = hash;
  });

  async function load(params) {
    report = null;
    csvButton.disabled = true;
    run.disabled = true;
    const range = Object.fromEntries(RANGE.map((k) => [k, params.get(k) || ""]));
    const base = { ...range, include_unposted: params.get("include_unposted") === "true" ? "true" : "" };
    fill(results, h("p", { class: "muted" }, "Loading…"));
    try {
      const documents = [];
      let totals = null;
      let token = null;
      for await (const data of pages("/reports/transactions", { ...base, limit: PAGE }, MAX_PAGES)) {
        totals ??= data.totals || {};
        documents.push(...(data.documents || []));
        token = data.next_page_token;
        status.textContent = `${documents.length} documents${token ? " so far…" : "."}`;
      }
      const complete = !token;
      report = { documents, totals, range };
      const off = complete ? mismatch(documents, totals) : [];
      fill(
        results,
        h("div", { class: "totals" }, totalsTable(totals)),
        complete ? null : h("div", { class: "warning" }, `More than ${MAX_PAGES * PAGE} documents: narrow the dates to list or download them all. The totals cover the whole range.`),
        off.length ? h("div", { class: "warning" }, `The documents listed do not add up to the totals for ${off.map(([k]) => DOCUMENT_LABELS[k] || k).join(", ")}: run the report again.`) : null,
        h("h2", {}, "Documents"),
        documents.length > SHOWN ? h("p", { class: "hint" }, `Showing the first ${SHOWN} of ${documents.length}; the CSV has them all.`) : null,
        table(COLUMNS, documents.slice(0, SHOWN), {
          caption: `Documents${params.get("include_unposted") === "true" ? " (posted and unposted)" : " posted to QuickBooks"}`,
          empty: "No document in this range.",
          stack: true,
          rowAttrs: (d) => ({ dataset: { kind: d.kind, app: d.id } }),
        }),
      );
      csvButton.disabled = !complete;
    } catch (error) {
      status.textContent = "";
      fill(results, errorBox(error));
    } finally {
      run.disabled = false;
    }
  }

  const params = new URLSearchParams(values);
  if (query.get("include_unposted") === "true") params.set("include_unposted", "true");
  await load(params);
}
