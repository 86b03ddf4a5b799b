// Small DOM helpers shared by every screen: element building (text is always set as text, never
// parsed as HTML), confirmation, notices, money and dates, and the plain words of QBO Link's codes.

/** h("button", {class: "x", onclick: fn}, "Label", child…) → an element. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = value;
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(key, "");
    } else {
      element.setAttribute(key, String(value));
    }
  }
  append(element, children);
  return element;
}

/** Appends children to `element`, skipping null/false and flattening arrays (Element.append would
 * write "null" or "[object …]"). */
export function add(element, ...children) {
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the content of `element` with `children`. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let labelSequence = 0;

/** A labelled form field: <label for=id>text</label> + control (the control gets the id). */
export function field(text, control, hint) {
  labelSequence += 1;
  const id = control.id || `f-${labelSequence}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: id }, text), control, hint ? h("p", { class: "hint", id: hintId }, hint) : null);
}

/** A table: columns = [{label, value: row => text|Node, class?}]; `stack` lays each row out as a
 * card of "label: value" lines on a narrow screen (every cell carries its column's data-label). */
export function table(columns, rows, { caption, empty = "Nothing to show.", rowAttrs, stack = false } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: stack ? "table-wrap stack" : "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
      h(
        "tbody",
        {},
        rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : {}, columns.map((c) => h("td", { class: c.class, "data-label": c.label }, c.value(row))))),
      ),
    ),
  );
}

/** Resolves true when the administrator confirms; the body may be text or nodes. */
export function confirm(title, body, okLabel = "OK", { danger = true } = {}) {
  const dialog = document.getElementById("confirm");
  fill(document.getElementById("confirm-title"), title);
  fill(document.getElementById("confirm-body"), ...(Array.isArray(body) ? body : [h("p", {}, body)]));
  const ok = document.getElementById("confirm-ok");
  ok.textContent = okLabel;
  ok.className = danger ? "danger" : "primary";
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

let toastTimer = 0;

/** A short notice at the bottom of the screen (read out by screen readers). */
export function notify(text, kind = "ok") {
  const toast = document.getElementById("toast");
  toast.textContent = text;
  toast.className = `toast ${kind}`;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    toast.hidden = true;
  }, 6000);
}

/** An error box for a screen (an ApiError's message is already in plain words). */
export function errorBox(error) {
  return h("div", { class: "error", role: "alert" }, error?.message || String(error));
}

/** Runs `action` with `button` disabled; shows its error as a notice. Resolves with its result. */
export async function busy(button, action) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (error) {
    notify(error.message || String(error), "bad");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

const money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** "1234.5" → "1,234.50"; amounts stay strings from the API (no float on the way). */
export function formatMoney(value) {
  if (value === null || value === undefined || value === "") return "";
  const text = String(value);
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = text.replace("-", "").split(".");
  const grouped = money.format(Number(whole)).split(".")[0];
  return `${negative ? "-" : ""}${grouped}.${(fraction + "00").slice(0, 2)}`;
}

export function formatDate(value) {
  return value ? String(value).slice(0, 10) : "";
}

export function formatTime(value) {
  if (!value) return "";
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? String(value) : time.toLocaleString("en-US", { dateStyle: "medium", timeStyle: "short" });
}

export const KIND_LABELS = {
  client: "Clients",
  site: "Sites",
  employee: "Employees",
  work_code: "Work codes",
  expense_code: "Expense codes",
  tax: "Taxes",
  account: "Accounts",
};

export const KIND_ONE = {
  client: "client",
  site: "site",
  employee: "employee",
  work_code: "work code",
  expense_code: "expense code",
  tax: "tax",
  account: "account",
};

export const DOCUMENT_LABELS = {
  client: "Client",
  invoice: "Invoice",
  payment: "Payment",
  credit_memo: "Credit memo",
  credit_application: "Credit applied",
  journal_day: "Journal day",
};

export const STATE_LABELS = {
  received: "Received",
  needs_attention: "Needs attention",
  queued: "Queued",
  in_flight: "Posting",
  uncertain: "Checking",
  posted: "Posted",
  failed: "Failed",
  skipped: "Skipped",
  voided: "Voided",
};

/** A state as a badge. */
export function stateBadge(state) {
  return h("span", { class: `badge state-${state}` }, STATE_LABELS[state] || state);
}

/** The match tab that fixes a reason, or null. */
export function reasonFix(reason) {
  const d = reason.details || {};
  switch (reason.code) {
    case "client_not_linked":
      return { kind: "client", id: d.client_id };
    case "item_not_mapped":
      return { kind: d.kind === "expense" ? "expense_code" : "work_code", id: d.code };
    case "tax_not_mapped":
    case "tax_rates_unknown":
      return { kind: "tax", id: d.tax_id };
    default:
      return null;
  }
}

/** A reason code and its details, in plain words for a bookkeeper. */
export function reasonText(reason) {
  const d = reason.details || {};
  switch (reason.code) {
    case "item_not_mapped":
      return `${d.kind === "expense" ? "Expense code" : "Work code"} ${d.code} has no QuickBooks item${d.line_id ? ` (line ${d.line_id})` : ""}.`;
    case "client_not_linked":
      return d.cause === "unknown_client"
        ? `Client ${d.client_id} is not known to QBO Link yet.`
        : `Client ${d.client_id} is not linked to a QuickBooks customer.`;
    case "client_type_excluded":
      return `Client ${d.client_id} is of type "${d.type}", which is not synchronized (Settings › client types).`;
    case "tax_not_mapped":
      return `Tax ${d.tax_id} has no QuickBooks tax code${d.line_id ? ` (line ${d.line_id})` : ""}.`;
    case "tax_rates_unknown":
      return `The rates of QuickBooks tax code ${d.qbo_id} (for tax ${d.tax_id}) are not known yet: refresh the Taxes list.`;
    case "tax_rate_unknown":
      return `No QuickBooks tax rate of ${d.percent}% is linked for tax ${d.tax_id}.`;
    case "taxable_flag_missing":
      return `Line ${d.line_id} does not say whether it is taxable, which this company's sales tax needs.`;
    case "tax_id_missing":
      return `Line ${d.line_id} has no tax, which this company's sales tax needs.`;
    case "tax_model_mismatch":
      return `The document's tax (${d.found}) does not fit this company's sales tax (it expects ${d.expected}).`;
    case "invoice_not_posted":
      return `It pays invoice ${d.invoice_id}, which is not in QuickBooks yet.`;
    case "credit_memo_not_posted":
      return `Credit memo ${d.credit_memo_id} is not in QuickBooks yet.`;
    case "push_disabled":
      return `Sending ${String(d.document || "documents").replace("_", " ")}s to QuickBooks is turned off in Settings.`;
    case "master_customer_missing":
      return "Summarised journal mode needs a master customer (Settings).";
    case "go_live_pending":
      return `It waits for the go-live date ${d.go_live_date}.`;
    case "before_go_live":
      return `Dated ${d.date}, before the go-live date ${d.go_live_date}: not sent.`;
    case "void_not_propagated":
      return "Voids and deletions are not sent to QuickBooks (Settings).";
    case "inactive_not_linked":
      return `Client ${d.client_id} is inactive and was never linked: not created in QuickBooks.`;
    case "summarised_mode":
      return "Summarised journal mode: posted as part of the day's journal entry.";
    case "not_connected":
      return "QuickBooks is not connected.";
    default:
      return `${reason.code.replaceAll("_", " ")}${Object.keys(d).length ? ` (${Object.entries(d).map(([k, v]) => `${k}: ${v}`).join(", ")})` : ""}`;
  }
}

/** A failed attempt's error (the posting log's last_error) in words. */
export function errorText(error) {
  if (!error) return "";
  if (typeof error === "string") return error;
  const parts = [error.message || error.detail || error.code || JSON.stringify(error)];
  if (error.code && error.message) parts.unshift(`QuickBooks error ${error.code}:`);
  return parts.join(" ");
}

/** Downloads `text` as a file named `name` (no server round trip, so no token in a URL). */
export function download(name, text, type = "text/csv") {
  const link = h("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name, hidden: true });
  document.body.append(link);
  link.click();
  setTimeout(() => {
    URL.revokeObjectURL(link.href);
    link.remove();
  }, 1000);
}

/** One CSV cell: quoted when needed; a leading =, +, - or @ is escaped (no formula injection). */
export function csvCell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text) && !/^-?\d+(\.\d+)?$/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A "Load more" button for a paged list: calls `more()` until it says there is no next page. */
export function moreButton(label, more) {
  const button = h("button", { type: "button", class: "secondary" }, label);
  button.addEventListener("click", () =>
    busy(button, async () => {
      const hasMore = await more();
      if (!hasMore) button.remove();
    }),
  );
  return button;
}
