// Match lists: for one kind, the app's list and QuickBooks' side by side with their links.  Pick an
// unlinked row on each side to link them by hand, unlink a pair, let automatch propose pairs,
// export app entries to QuickBooks or import QuickBooks entries into the app (docs/mappings.md).

import { del, get, pages, post, put } from "../api.js";
import { KIND_LABELS, KIND_ONE, busy, confirm, errorBox, field, fill, formatTime, h, notify, table } from "../ui.js";

const KINDS = Object.keys(KIND_LABELS);
const PAGE = 100;
const PARTIES = new Set(["client", "site", "employee"]);

const HOW = { same_name: "Same name", same_email: "Same e-mail" };
const SIGNALS = {
  same_name: "same name",
  same_letters: "same letters",
  same_words: "same words in another order",
  shared_words: "shared words",
  near_spelling: "near spelling",
  similar_characters: "similar spelling",
  other_name: "through another name",
  same_email: "same e-mail",
  same_email_domain: "same e-mail domain",
  different_email: "different e-mails",
};
const HELD = {
  ambiguous_qbo: "several QuickBooks entries have this name",
  ambiguous_app: "several app entries have this QuickBooks name",
  email_not_corroborated: "only the e-mail agrees",
  close_competitor_qbo: "another QuickBooks entry is nearly as close",
  close_competitor_app: "another app entry is nearly as close",
  email_conflict: "the e-mail addresses disagree",
};
const REFUSALS = {
  app_entity_not_found: "the app's list no longer has it",
  duplicate_name: "QuickBooks already uses this name",
  parent_not_linked: "its parent is not linked to a QuickBooks customer",
  client_type_not_synced: "its client type is not synchronized (Settings › client types)",
  incompatible_entity: "QuickBooks cannot use it here",
  qbo_refused: "QuickBooks refused it",
  inactive: "it is inactive in QuickBooks",
};
const OUTCOMES = {
  created: ["Created in QuickBooks and linked", "state-posted"],
  imported: ["Imported into the app and linked", "state-posted"],
  already_linked: ["Already linked", ""],
  refused: ["Refused", "state-failed"],
};

const plural = (n, word, many = `${word}s`) => `${n} ${n === 1 ? word : many}`;
const qboName = (row) => row.fully_qualified_name || row.name;
/** A button that runs `action` through busy() (disabled meanwhile, its error as a notice). */
const button = (text, action, attrs = {}) => h("button", { type: "button", ...attrs, onclick: (e) => busy(e.currentTarget, action) }, text);

export async function render(view, { args, query, refreshShell }) {
  const kind = KINDS.includes(args[0]) ? args[0] : "client";
  const label = KIND_LABELS[kind];
  const lower = label.toLowerCase();
  const one = KIND_ONE[kind];
  const base = `/mappings/${kind}`;
  const canExport = kind !== "tax";
  const s = { app: [], qbo: [], appTotal: 0, qboTotal: 0, token: null, seq: 0, pickApp: null, pickQbo: null };
  const chosen = { app: new Set(), qbo: new Set() }; // export / import selections
  const known = { app: new Map(), qbo: new Map() }; // id → name, for messages about rows off screen
  const appName = (id) => known.app.get(id) || id;
  const linkedBadge = () => h("span", { class: "badge state-posted" }, "Linked");
  const dismiss = () => h("button", { type: "button", class: "secondary", onclick: () => fill(results) }, "Dismiss");
  const qboNamed = (id) => known.qbo.get(id) || id;

  // --- the screen's parts ---------------------------------------------------------------------

  const search = h("input", { type: "search", autocomplete: "off", placeholder: "Name, e-mail or id" });
  const hide = h("input", { type: "checkbox", id: "match-hide" });
  const readAt = h("span", { class: "muted", id: "qbo-read" });
  const pickbar = h("div", { class: "pickbar", role: "region", "aria-label": "Link by hand", "aria-live": "polite" });
  const results = h("div", { id: "match-results" });
  const listError = h("div");
  const appSide = h("div", { class: "side", id: "app-side" });
  const qboSide = h("div", { class: "side", id: "qbo-side" });
  const moreSlot = h("div", { class: "actions" });

  fill(
    view,
    h("h1", {}, `Match lists — ${label}`),
    h(
      "nav",
      { class: "tabs", "aria-label": "Lists to match" },
      KINDS.map((k) => h("a", { href: `#/match/${k}`, "aria-current": k === kind ? "page" : null }, KIND_LABELS[k])),
    ),
    h(
      "p",
      { class: "hint" },
      `Link each of the app's ${lower} to its QuickBooks counterpart: pick an unlinked entry in each list, then Link. ` +
        "Picking a linked entry highlights its partner. Documents wait until what they use is linked.",
    ),
    h(
      "div",
      { class: "toolbar" },
      readAt,
      button("Refresh from QuickBooks", refreshQbo, { class: "secondary" }),
      button("Automatch…", automatch),
      button("Clear all links", clearAll, { class: "secondary" }),
    ),
    h(
      "div",
      { class: "filters" },
      field("Search both lists", search),
      h("label", { class: "check", for: "match-hide" }, hide, "Hide linked"),
    ),
    results,
    listError,
    h("div", { class: "columns", id: "match-lists" }, appSide, qboSide),
    moreSlot,
    pickbar,
  );

  let timer = 0;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 300);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      clearTimeout(timer);
      reload();
    }
  });
  hide.addEventListener("change", reload);

  // --- reading the lists ----------------------------------------------------------------------

  const params = () => ({ hide_linked: hide.checked ? "true" : undefined, q: search.value.trim(), limit: PAGE });

  function remember(page) {
    for (const row of page.app) known.app.set(row.id, row.name);
    for (const row of page.qbo) known.qbo.set(row.id, qboName(row));
  }

  function take(page, append) {
    remember(page);
    s.app = append ? s.app.concat(page.app) : page.app;
    s.qbo = append ? s.qbo.concat(page.qbo) : page.qbo;
    s.appTotal = page.app_total;
    s.qboTotal = page.qbo_total;
    s.token = page.next_page_token;
    fill(readAt, page.qbo_refreshed_at ? `QuickBooks list read ${formatTime(page.qbo_refreshed_at)}` : "QuickBooks list not read yet");
    // A picked row is kept with its latest state; one linked since is dropped from the selections.
    if (s.pickApp) s.pickApp = s.app.find((r) => r.id === s.pickApp.id) || s.pickApp;
    if (s.pickQbo) s.pickQbo = s.qbo.find((r) => r.id === s.pickQbo.id) || s.pickQbo;
    for (const row of s.app) if (row.linked_qbo_id) chosen.app.delete(row.id);
    for (const row of s.qbo) if (row.linked_app_id) chosen.qbo.delete(row.id);
  }

  async function reload() {
    const seq = (s.seq += 1);
    try {
      const page = await get(base, params());
      if (seq !== s.seq) return;
      fill(listError);
      take(page, false);
      draw();
    } catch (error) {
      if (seq === s.seq) fill(listError, errorBox(error));
    }
  }

  async function loadMore() {
    if (!s.token) return false;
    const seq = s.seq;
    const page = await get(base, { ...params(), page_token: s.token });
    if (seq !== s.seq) return false;
    take(page, true);
    draw();
    return Boolean(s.token);
  }

  async function changed() {
    await reload();
    refreshShell();
  }

  // --- drawing --------------------------------------------------------------------------------

  function pickButton(side, row, text) {
    return h(
      "button",
      { type: "button", class: "link pick", "aria-pressed": "false", onclick: () => pick(side, row) },
      text,
    );
  }

  function selectBox(side, row) {
    const box = h("input", {
      type: "checkbox",
      class: "select",
      "aria-label": `Select ${side === "app" ? row.name : qboName(row)} to ${side === "app" ? "export" : "import"}`,
      checked: chosen[side].has(row.id),
    });
    box.addEventListener("change", () => {
      if (box.checked) chosen[side].add(row.id);
      else chosen[side].delete(row.id);
      drawActions();
    });
    return box;
  }

  // Secondary facts (id, e-mail, ...) are columns on a wide screen, a line under the name on a phone.
  function nameCell(side, row, text, facts) {
    const free = side === "app" ? !row.linked_qbo_id && canExport : !row.linked_app_id && row.active;
    return [
      free ? selectBox(side, row) : null,
      free ? " " : null,
      pickButton(side, row, text),
      row.active ? null : [" ", h("span", { class: "badge" }, "Inactive")],
      h("span", { class: "phone-only sub" }, facts.filter(Boolean).join(" · ")),
    ];
  }

  function appColumns() {
    const extra = [];
    if (kind === "client" || kind === "employee") extra.push({ label: "E-mail", get: (r) => r.email });
    if (kind === "site") extra.push({ label: "Client", get: (r) => r.parent_id });
    if (kind === "account") extra.push({ label: "Use", get: (r) => r.type });
    const unlinkButton = (r) => button("Unlink", () => unlink(r), { class: "secondary small", "aria-label": `Unlink ${r.name}` });
    return [
      { label: "Name", value: (r) => nameCell("app", r, r.name, [r.id, ...extra.map((c) => c.get(r))]) },
      { label: "Id", class: "wide-only", value: (r) => h("code", {}, r.id) },
      ...extra.map((c) => ({ label: c.label, class: "wide-only", value: (r) => c.get(r) || "" })),
      {
        label: "QuickBooks",
        value: (r) =>
          r.linked_qbo_id
            ? [linkedBadge(), " ", h("span", { class: "linked-name" }, r.linked_qbo_name || `id ${r.linked_qbo_id}`), " ", unlinkButton(r)]
            : h("span", { class: "muted" }, "Not linked"),
      },
    ];
  }

  function qboType(r) {
    if (kind === "tax" && Array.isArray(r.rates)) {
      return r.rates.length ? r.rates.map((x) => `${x.name} ${x.percent}%`).join(" + ") : "no rate";
    }
    return r.type || (r.active ? "Active" : "");
  }

  function qboColumns() {
    return [
      { label: "Name", value: (r) => nameCell("qbo", r, qboName(r), [r.id, qboType(r)]) },
      { label: "Id", class: "wide-only", value: (r) => h("code", {}, r.id) },
      { label: kind === "tax" ? "Rates" : "Type", class: "wide-only", value: qboType },
      {
        label: "App",
        value: (r) =>
          r.linked_app_id
            ? [linkedBadge(), " ", h("code", { class: "linked-name" }, r.linked_app_id)]
            : h("span", { class: "muted" }, "Not linked"),
      },
    ];
  }

  const rowAttrs = (side) => (row) => ({ dataset: { id: row.id, side } });

  function sideBlock(side, title, rows, total, columns, action) {
    return [
      h("h2", {}, title),
      h("p", { class: "muted count-line" }, `Showing ${rows.length} of ${total}`),
      table(columns, rows, {
        caption: title,
        rowAttrs: rowAttrs(side),
        empty: search.value.trim() ? "Nothing matches the search." : hide.checked ? "Everything is linked." : "Nothing in this list yet.",
      }),
      action,
    ];
  }

  // busy() enables its button again at the end: the selection, now empty, decides.
  const after = (action) => async (e) => {
    await busy(e.currentTarget, action);
    drawActions();
  };
  const exportButton = h("button", { type: "button", onclick: after(exportSelected) });
  const importButton = h("button", { type: "button", onclick: after(importSelected) });

  function drawActions() {
    exportButton.textContent = `Export selected to QuickBooks (${chosen.app.size})`;
    exportButton.disabled = chosen.app.size === 0;
    importButton.textContent = `Import selected into the app (${chosen.qbo.size})`;
    importButton.disabled = chosen.qbo.size === 0;
  }

  function draw() {
    const appAction = canExport
      ? h("div", { class: "actions" }, exportButton)
      : h("p", { class: "hint" }, "QuickBooks' API cannot create tax codes: create the tax in QuickBooks, refresh, then link or import it.");
    fill(appSide, sideBlock("app", `In the app: ${lower}`, s.app, s.appTotal, appColumns(), appAction));
    fill(qboSide, sideBlock("qbo", "In QuickBooks", s.qbo, s.qboTotal, qboColumns(), h("div", { class: "actions" }, importButton)));
    drawActions();
    const left = `${s.appTotal - s.app.length} app, ${s.qboTotal - s.qbo.length} QuickBooks left`;
    fill(moreSlot, s.token ? button(`Load more (${left})`, loadMore, { class: "secondary" }) : null);
    highlight();
  }

  // --- picking and linking by hand --------------------------------------------------------------

  function pick(side, row) {
    const key = side === "app" ? "pickApp" : "pickQbo";
    const other = side === "app" ? "pickQbo" : "pickApp";
    s[key] = s[key]?.id === row.id ? null : row;
    const linked = (r) => Boolean(r && (r.linked_qbo_id || r.linked_app_id));
    // A linked row shows its partner; an unlinked pick on the other side no longer pairs with it.
    if (s[key] && (linked(s[key]) || linked(s[other]))) s[other] = null;
    highlight();
  }

  function highlight() {
    const partnerQbo = s.pickApp?.linked_qbo_id;
    const partnerApp = s.pickQbo?.linked_app_id;
    for (const [container, picked, partner] of [
      [appSide, s.pickApp?.id, partnerApp],
      [qboSide, s.pickQbo?.id, partnerQbo],
    ]) {
      for (const tr of container.querySelectorAll("tbody tr")) {
        const id = tr.dataset.id;
        tr.classList.toggle("picked", id === picked);
        tr.classList.toggle("partner", id !== picked && id === partner);
        tr.querySelector("button.pick")?.setAttribute("aria-pressed", String(id === picked));
      }
    }
    drawPickbar();
  }

  function unpick() {
    s.pickApp = s.pickQbo = null;
    highlight();
  }

  function drawPickbar() {
    const a = s.pickApp;
    const q = s.pickQbo;
    pickbar.hidden = !a && !q;
    const clear = h("button", { type: "button", class: "secondary small", onclick: unpick }, "Clear pick");
    const pair = (left, right, note) => [
      h("strong", {}, left),
      h("span", { "aria-hidden": "true" }, " ↔ "),
      h("strong", {}, right),
      note ? h("span", { class: "muted" }, note) : null,
    ];
    if (a?.linked_qbo_id) fill(pickbar, pair(a.name, a.linked_qbo_name || a.linked_qbo_id, " are linked"), clear);
    else if (q?.linked_app_id) fill(pickbar, pair(appName(q.linked_app_id), qboName(q), " are linked"), clear);
    else
      fill(
        pickbar,
        pair(a ? a.name : "pick an app entry", q ? qboName(q) : "pick a QuickBooks entry"),
        a && q ? button("Link", () => link(a, q)) : null,
        clear,
      );
  }

  async function link(a, q) {
    await put(`${base}/app/${encodeURIComponent(a.id)}`, { qbo_id: q.id });
    notify(`Linked ${a.name} to ${qboName(q)}.`);
    s.pickApp = s.pickQbo = null;
    await changed();
  }

  async function unlink(row) {
    await del(`${base}/app/${encodeURIComponent(row.id)}`);
    notify(`Unlinked ${row.name} from ${row.linked_qbo_name || `QuickBooks id ${row.linked_qbo_id}`}.`);
    if (s.pickApp?.id === row.id) s.pickApp = null;
    await changed();
  }

  async function clearAll() {
    const [whole, open] = await Promise.all([get(base, { limit: 1 }), get(base, { limit: 1, hide_linked: "true" })]);
    const count = Math.max(whole.app_total - open.app_total, whole.qbo_total - open.qbo_total);
    if (!count) {
      notify(`No ${one} is linked.`);
      return;
    }
    const ok = await confirm(
      `Clear all ${one} links?`,
      [
        h("p", {}, `${plural(count, "link")} between the app's ${lower} and QuickBooks will be removed.`),
        h("p", {}, "Nothing in QuickBooks changes: no entry is created, edited or deleted there."),
        h("p", {}, `Documents that use these ${lower} wait until they are linked again.`),
      ],
      `Remove ${plural(count, "link")}`,
    );
    if (!ok) return;
    const answer = await del(base);
    notify(`Removed ${plural(answer.removed, "link")}.`);
    s.pickApp = s.pickQbo = null;
    await changed();
  }

  async function refreshQbo() {
    const answer = await post("/mappings/refresh");
    notify(`Read ${plural(answer.refreshed?.[kind] ?? 0, "entry", "entries")} of this list from QuickBooks.`);
    await reload();
  }

  // --- automatch ------------------------------------------------------------------------------

  /** Names of every unlinked entry (automatch proposes ids only). */
  async function unlinkedNames() {
    for await (const data of pages(base, { hide_linked: "true", limit: 1000 })) remember(data);
  }

  async function automatch() {
    const [proposal] = await Promise.all([post(`${base}/automatch`), unlinkedNames()]);
    const rows = proposal.matches.map((m) => ({ app: m.app_id, qbo: m.qbo_id, sure: true, how: HOW[m.reason] || m.reason }));
    for (const [appId, found] of Object.entries(proposal.suggestions || {})) {
      const held = proposal.held_back?.[appId];
      found.forEach((sg, i) =>
        rows.push({
          app: appId,
          qbo: sg.qbo_id,
          sure: false,
          how: [
            `${Math.round(sg.score * 100)}% alike`,
            sg.signals.map((x) => SIGNALS[x] || x).join(", "),
            held && i === 0 ? `held back: ${HELD[held] || held}` : "",
          ]
            .filter(Boolean)
            .join(" · "),
        }),
      );
    }
    const lost = (proposal.unmatched || []).filter((id) => !(proposal.suggestions?.[id] || []).length);
    const sure = plural(proposal.matches.length, "sure match", "sure matches");
    for (const row of rows) {
      const name = `Accept ${appName(row.app)} ↔ ${qboNamed(row.qbo)}`;
      row.cell = h("span", {}, button("Accept", () => accept(row, rows), { class: "small", "aria-label": name }));
    }
    fill(
      results,
      h(
        "section",
        { class: "card proposals", "aria-labelledby": "proposals-title" },
        h("h2", { id: "proposals-title" }, "Automatch proposals"),
        h(
          "p",
          {},
          `${sure}, ${plural(rows.length - proposal.matches.length, "suggestion")}`,
          lost.length ? `; ${lost.length} of the app's ${lower} found no candidate (${lost.map(appName).join(", ")})` : "",
          ". Nothing is linked until you accept.",
        ),
        table(
          [
            { label: "App", value: (r) => appName(r.app) },
            { label: "QuickBooks", value: (r) => qboNamed(r.qbo) },
            {
              label: "How it matched",
              value: (r) => [h("span", { class: `badge ${r.sure ? "state-posted" : ""}` }, r.sure ? "Sure" : "Suggestion"), " ", r.how],
            },
            { label: "Action", value: (r) => r.cell },
          ],
          rows,
          { caption: "Proposed pairs", empty: `Automatch found nothing new to propose: every active ${one} is linked or has no counterpart.` },
        ),
        h("div", { class: "actions" }, proposal.matches.length ? button(`Accept all ${sure}`, () => applyAll(rows)) : null, dismiss()),
      ),
    );
    results.querySelector("h2")?.setAttribute("tabindex", "-1");
    results.querySelector("h2")?.focus();
  }

  function settle(rows, linkedPairs) {
    for (const row of rows) {
      if (linkedPairs.some((p) => p.app === row.app && p.qbo === row.qbo)) fill(row.cell, linkedBadge());
      else if (linkedPairs.some((p) => p.app === row.app || p.qbo === row.qbo)) fill(row.cell, h("span", { class: "muted" }, "Taken"));
    }
  }

  async function accept(row, rows) {
    await put(`${base}/app/${encodeURIComponent(row.app)}`, { qbo_id: row.qbo });
    notify(`Linked ${appName(row.app)} to ${qboNamed(row.qbo)}.`);
    settle(rows, [row]);
    await changed();
  }

  async function applyAll(rows) {
    const answer = await post(`${base}/automatch`, undefined, { apply: "true" });
    const linked = answer.linked.map((m) => ({ app: m.app_id, qbo: m.qbo_id }));
    const skipped = Object.keys(answer.skipped || {}).length;
    notify(`Linked ${plural(linked.length, one)}${skipped ? `; ${skipped} skipped (linked meanwhile)` : ""}.`);
    settle(rows, linked);
    await changed();
  }

  // --- export and import ----------------------------------------------------------------------

  const holder = (x) => `${x.entity.toLowerCase()} “${x.display_name}”${x.active ? "" : " (inactive)"}`;

  async function conflictsOk(ids) {
    if (!PARTIES.has(kind)) return true;
    const { conflicts } = await get(`${base}/name-conflicts`);
    const hits = conflicts.filter((c) => ids.includes(c.app_id));
    if (!hits.length) return true;
    return confirm(
      "QuickBooks will refuse some names",
      [
        h("p", {}, "QuickBooks refuses a name already used by a customer, vendor or employee, even an inactive one:"),
        h(
          "ul",
          {},
          hits.map((c) =>
            h("li", {}, `${c.display_name}: used by ${c.conflicts.map(holder).join(", ")}`),
          ),
        ),
        h("p", {}, "Rename them in the app or in QuickBooks first. Export the others anyway?"),
      ],
      "Export anyway",
      { danger: false },
    );
  }

  async function transfer(side, ids) {
    const [path, bodyKey, title] = side === "app" ? ["export", "app_ids", "Export to QuickBooks"] : ["import", "qbo_ids", "Import into the app"];
    const outcomes = [];
    try {
      for (let i = 0; i < ids.length; i += 100) {
        const answer = await post(`${base}/${path}`, { [bodyKey]: ids.slice(i, i + 100) });
        outcomes.push(...answer.results);
      }
    } catch (error) {
      const fix =
        error.type === "revenue_account_missing"
          ? h("p", {}, h("a", { href: "#/settings" }, "Set a revenue account in Settings"), " or link the code's app account first.")
          : null;
      const heading = h("h2", { id: "transfer-title" }, title);
      fill(results, h("section", { class: "card", "aria-labelledby": "transfer-title" }, heading, errorBox(error), fix));
      if (outcomes.length === 0) throw error;
    }
    showOutcomes(side, title, outcomes);
    chosen[side].clear();
    await changed();
  }

  function outcomeText(o) {
    const [words, badge] = OUTCOMES[o.status] || [o.status, ""];
    const detail = o.status === "refused" ? [REFUSALS[o.reason] || (o.reason || "").replaceAll("_", " "), o.message].filter(Boolean).join(": ") : "";
    return [h("span", { class: `badge ${badge}` }, words), detail ? [" ", h("span", { class: "reason" }, detail)] : null];
  }

  function showOutcomes(side, title, outcomes) {
    const done = outcomes.filter((o) => o.status === "created" || o.status === "imported").length;
    const refused = outcomes.filter((o) => o.status === "refused").length;
    fill(
      results,
      h(
        "section",
        { class: "card transfer", "aria-labelledby": "transfer-title" },
        h("h2", { id: "transfer-title", tabindex: "-1" }, title),
        h("p", {}, `${done} done, ${refused} refused, ${outcomes.length - done - refused} already linked.`),
        table(
          [
            { label: side === "app" ? "App entry" : "QuickBooks entry", value: (o) => (side === "app" ? appName : qboNamed)(o.id) },
            { label: "Outcome", value: outcomeText },
            { label: side === "app" ? "QuickBooks id" : "App id", value: (o) => h("code", {}, (side === "app" ? o.qbo_id : o.app_id) || "") },
          ],
          outcomes,
          { caption: "Per entry" },
        ),
        h("div", { class: "actions" }, dismiss()),
      ),
    );
    results.querySelector("h2")?.focus();
    notify(`${title}: ${done} done, ${refused} refused.`, refused ? "bad" : "ok");
  }

  async function exportSelected() {
    const ids = [...chosen.app];
    if (ids.length && (await conflictsOk(ids))) await transfer("app", ids);
  }

  async function importSelected() {
    const ids = [...chosen.qbo];
    if (ids.length) await transfer("qbo", ids);
  }

  // --- first show -----------------------------------------------------------------------------

  await reload();
  // #/match/<kind>?app=<id> (or qbo=<id>), from Needs attention: find the row, pick it and show it.
  const wanted = query?.get("app") ? ["app", query.get("app")] : query?.get("qbo") ? ["qbo", query.get("qbo")] : null;
  if (wanted) {
    const [side, id] = wanted;
    for (let page = 0; page < 50 && !s[side].some((r) => r.id === id) && s.token; page += 1) await loadMore();
    const row = s[side].find((r) => r.id === id);
    if (!row) {
      notify(`${KIND_ONE[kind]} ${id} is not in this list.`, "bad");
      return;
    }
    pick(side, row);
    const tr = [...(side === "app" ? appSide : qboSide).querySelectorAll("tbody tr")].find((t) => t.dataset.id === id);
    tr?.scrollIntoView({ block: "center" });
    tr?.querySelector("button.pick")?.focus({ preventScroll: true });
  }
}
