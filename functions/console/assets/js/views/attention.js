// Needs attention: every document waiting in needs_attention or failed, why in plain words, the
// match tab that fixes it, Retry for failed ones and "Check again" for the whole list.

import { all, post } from "../api.js";
import {
  DOCUMENT_LABELS,
  KIND_ONE,
  busy,
  errorBox,
  errorText,
  fill,
  formatDate,
  h,
  notify,
  reasonFix,
  reasonText,
  stateBadge,
  table,
} from "../ui.js";

const PATH_KINDS = { invoice: "invoice", payment: "payment", credit_memo: "credit_memo", client: "client", credit_application: "credit_application" };

/** "#/match/work_code?app=wc-irrigation" and its words, or null. */
function fixLink(reason) {
  const fix = reasonFix(reason);
  if (!fix || !fix.id) return null;
  const href = `#/match/${fix.kind}?app=${encodeURIComponent(fix.id)}`;
  return { key: `${fix.kind}:${fix.id}`, href, text: `Link or export ${KIND_ONE[fix.kind] || fix.kind} ${fix.id}`, fix };
}

function reasonsCell(entry) {
  const items = (entry.reasons || []).map((reason) => h("li", {}, reasonText(reason)));
  if (entry.state === "failed" && entry.last_error) {
    items.push(h("li", { class: "qbo-error" }, "QuickBooks said: ", errorText(entry.last_error)));
  }
  return items.length ? h("ul", { class: "plain" }, items) : h("span", { class: "muted" }, "No reason recorded.");
}

const WAITS_FOR = {
  invoice_not_posted: (d) => `Goes by itself once invoice ${d.invoice_id} is in QuickBooks.`,
  credit_memo_not_posted: (d) => `Goes by itself once credit memo ${d.credit_memo_id} is in QuickBooks.`,
};

function fixCell(entry) {
  const links = [];
  const seen = new Set();
  for (const reason of entry.reasons || []) {
    const fix = fixLink(reason);
    if (!fix && WAITS_FOR[reason.code]) links.push(h("li", { class: "muted" }, WAITS_FOR[reason.code](reason.details || {})));
    if (fix && !seen.has(fix.key)) {
      seen.add(fix.key);
      links.push(h("li", {}, h("a", { href: fix.href }, fix.text)));
    }
  }
  return links.length ? h("ul", { class: "plain" }, links) : "";
}

export async function render(view, { refreshShell }) {
  const body = h("div", { class: "attention-body" });
  const check = h("button", { type: "button", class: "secondary" }, "Check again");
  view.append(
    h("h1", {}, "Needs attention"),
    h(
      "p",
      { class: "muted" },
      "Documents QBO Link could not send to QuickBooks yet. Fix what each one waits for (usually a link in Match lists): it then goes to QuickBooks by itself.",
    ),
    h("div", { class: "toolbar" }, check, h("span", { class: "hint" }, "Judges every waiting document again now (normally done by itself after each change).")),
    body,
  );

  async function load() {
    fill(body, h("p", { class: "muted" }, "Loading…"));
    try {
      const [waiting, failed] = await Promise.all([
        all("/postings", "entries", { state: "needs_attention" }, 50),
        all("/postings", "entries", { state: "failed" }, 50),
      ]);
      show([...failed, ...waiting]);
    } catch (error) {
      fill(body, errorBox(error));
    }
  }

  async function afterChange() {
    await load();
    refreshShell();
  }

  function retryButton(entry) {
    if (entry.state !== "failed" || !PATH_KINDS[entry.kind]) return "";
    const button = h("button", { type: "button", class: "small", "aria-label": `Retry ${DOCUMENT_LABELS[entry.kind] || entry.kind} ${entry.app_id}` }, "Retry");
    button.addEventListener("click", () =>
      busy(button, async () => {
        await post(`/postings/${PATH_KINDS[entry.kind]}/${encodeURIComponent(entry.app_id)}/retry`);
        notify(`${DOCUMENT_LABELS[entry.kind] || entry.kind} ${entry.app_id} is queued for QuickBooks again.`);
        await afterChange();
      }),
    );
    return button;
  }

  function show(entries) {
    if (!entries.length) {
      fill(body, h("div", { class: "success" }, "All is well: every document has gone to QuickBooks, or is on its way."));
      return;
    }
    // What fixes the most documents first: "3 documents wait for work code wc-irrigation".
    const groups = new Map();
    for (const entry of entries) {
      for (const reason of entry.reasons || []) {
        const fix = fixLink(reason);
        if (!fix) continue;
        const group = groups.get(fix.key) || { fix, ids: new Set() };
        group.ids.add(`${entry.kind}:${entry.app_id}`);
        groups.set(fix.key, group);
      }
    }
    const failedCount = entries.filter((e) => e.state === "failed").length;
    const waitingCount = entries.length - failedCount;
    const counts = [
      waitingCount ? `${waitingCount} waiting` : null,
      failedCount ? `${failedCount} failed` : null,
    ].filter(Boolean);
    fill(
      body,
      h(
        "p",
        { class: "attention-count" },
        `${entries.length} document${entries.length === 1 ? "" : "s"} need${entries.length === 1 ? "s" : ""} attention${counts.length > 1 ? ` (${counts.join(", ")})` : ""}.`,
      ),
      groups.size
        ? h(
            "ul",
            { class: "fix-list" },
            [...groups.values()]
              .sort((a, b) => b.ids.size - a.ids.size)
              .map((g) =>
                h("li", {}, `${g.ids.size} document${g.ids.size === 1 ? "" : "s"} wait${g.ids.size === 1 ? "s" : ""} for ${KIND_ONE[g.fix.fix.kind] || g.fix.fix.kind} ${g.fix.fix.id}: `, h("a", { href: g.fix.href }, g.fix.text)),
              ),
          )
        : null,
      table(
        [
          { label: "Document", value: (e) => h("span", {}, h("strong", {}, DOCUMENT_LABELS[e.kind] || e.kind), " ", e.app_id) },
          { label: "Date", value: (e) => formatDate(e.txn_date), class: "nowrap" },
          { label: "State", value: (e) => stateBadge(e.state) },
          { label: "Why", value: reasonsCell, class: "wide" },
          { label: "Fix", value: fixCell },
          failedCount ? { label: "Action", value: retryButton } : null,
        ].filter(Boolean),
        entries,
        { caption: "Documents that need attention", stack: true, rowAttrs: (e) => ({ dataset: { kind: e.kind, app: e.app_id, state: e.state } }) },
      ),
    );
  }

  check.addEventListener("click", () =>
    busy(check, async () => {
      const answer = await post("/postings/recheck");
      const n = answer?.waiting ?? 0;
      notify(
        answer?.status === "nothing_waiting"
          ? "Nothing is waiting to be checked."
          : `Checking ${n} waiting document${n === 1 ? "" : "s"} again; the ones now ready go to QuickBooks in a few seconds.`,
      );
      await afterChange();
      // The check runs through the push queue: look again once it has had time to move them.
      setTimeout(() => {
        if (view.isConnected) afterChange();
      }, 3000);
    }),
  );

  await load();
}
