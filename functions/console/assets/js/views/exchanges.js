// Exchanges: the latest exchange with QuickBooks in plain words, and the history (pull and push).

import { get } from "../api.js";
import { KIND_LABELS, errorBox, fill, formatTime, h, moreButton, table } from "../ui.js";

const SOURCES = {
  push: "Push to QuickBooks",
  recheck: "Recheck of waiting documents",
  webhook: "Changes from QuickBooks (webhook)",
  sweep: "Scheduled sweep of QuickBooks",
  export: "Export to QuickBooks",
  import: "Import from QuickBooks",
};

/** The source in words; a list transfer names its list ("Export to QuickBooks: work codes"). */
function sourceText(x) {
  const source = SOURCES[x.source] || x.source;
  const transfer = x.source === "export" || x.source === "import";
  const list = KIND_LABELS[x.trigger] || String(x.trigger || "").replaceAll("_", " ");
  return transfer && list ? `${source}: ${list.toLowerCase()}` : source;
}

const EVENT_WORDS = {
  posted: "posted",
  failed: "failed",
  voided: "voided",
  throttled: "slowed down by QuickBooks",
  ignored: "ignored",
  skipped: "skipped",
  recheck_judged: "checked",
  recheck_queued: "sent on to QuickBooks",
  recheck_unchanged: "still waiting",
  recheck_rewritten: "waiting for another reason",
  created: "created in QuickBooks and linked",
  imported: "imported into the app and linked",
  already_linked: "already linked",
  refused: "refused by QuickBooks",
};

/** A recheck's reason ("export:work_code") in words. */
function triggerText(trigger) {
  const [what, kinds] = String(trigger).split(":");
  const words = {
    posted: "documents posted just before",
    settings: "a change of the settings",
    api: "Check again",
    reconnect: "a reconnect to QuickBooks",
    link: "a link made",
    automatch: "automatic matching",
    export: "an export to QuickBooks",
    import: "an import from QuickBooks",
    onboard: "the first matching",
  };
  return `${words[what] || what}${kinds ? ` (${kinds.replaceAll("_", " ").replaceAll(",", ", ")})` : ""}`;
}

/** "5 minutes ago". */
export function ago(value, now = Date.now()) {
  const time = new Date(value).getTime();
  if (Number.isNaN(time)) return "";
  const seconds = Math.round((now - time) / 1000);
  if (seconds < 45) return "just now";
  const units = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    const n = Math.round(seconds / size);
    if (n >= 1 && seconds >= size * 0.75) return `${n} ${unit}${n === 1 ? "" : "s"} ago`;
  }
  return "just now";
}

function outcomeBadge(outcome) {
  const css = { succeeded: "state-posted", failed: "state-failed", running: "state-in_flight" }[outcome] || "";
  return h("span", { class: `badge ${css}` }, outcome || "");
}

function eventsText(events, documents = false) {
  const noun = (n) => (documents ? ` document${n === 1 ? "" : "s"}` : "");
  return Object.entries(events || {})
    .filter(([, n]) => n)
    .map(([name, n]) => `${n}${noun(n)} ${EVENT_WORDS[name] || name.replaceAll("_", " ")}`)
    .join(", ");
}

/** "Push to QuickBooks, finished 5 minutes ago, succeeded: 21 posted." */
function sentence(x) {
  const source = sourceText(x);
  const when = x.finished_at ? `finished ${ago(x.finished_at)}` : `started ${ago(x.started_at)}, still running`;
  const what = eventsText(x.events, x.source === "push" || x.source === "recheck");
  const outcome = x.outcome === "running" ? "" : `, ${x.outcome}`;
  return `${source}, ${when}${outcome}${what ? `: ${what}` : ""}.`;
}

function latestCard(x) {
  if (!x) return h("p", { class: "empty" }, "No exchange with QuickBooks yet.");
  const facts = [
    ["Started", formatTime(x.started_at)],
    ["Finished", x.finished_at ? formatTime(x.finished_at) : "Still running"],
    ["Outcome", outcomeBadge(x.outcome)],
    ["Messages handled", String(x.notices ?? 0)],
    ["Read from QuickBooks", String(x.reads ?? 0)],
    ["Changes", String(x.changes ?? 0)],
    x.trigger && x.source !== "export" && x.source !== "import" ? ["Because of", triggerText(x.trigger)] : null,
    x.error ? ["Error", x.error] : null,
  ].filter(Boolean);
  return h(
    "div",
    { class: "card latest", dataset: { exchange: x.exchange_id } },
    h("h2", {}, "Latest exchange"),
    h("p", { class: "latest-sentence" }, sentence(x)),
    h("dl", {}, facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
  );
}

const COLUMNS = [
  { label: "Source", value: sourceText },
  { label: "Started", value: (x) => formatTime(x.started_at) },
  { label: "Finished", value: (x) => formatTime(x.finished_at) },
  { label: "Outcome", value: (x) => outcomeBadge(x.outcome) },
  { label: "Notices", value: (x) => String(x.notices ?? 0), class: "num" },
  { label: "Reads", value: (x) => String(x.reads ?? 0), class: "num" },
  { label: "Changes", value: (x) => String(x.changes ?? 0), class: "num" },
  { label: "Echoes", value: (x) => String(x.echoes ?? 0), class: "num" },
  { label: "Events", value: (x) => eventsText(x.events) },
  { label: "Error", value: (x) => (x.error ? h("span", { class: "qbo-error" }, x.error) : "") },
];

export async function render(view) {
  const latest = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const history = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  view.append(
    h("h1", {}, "Exchanges"),
    h("p", { class: "muted" }, "Every time QBO Link talked to QuickBooks for this firm: pushes of your documents, rechecks, and the changes it read back."),
    latest,
    h("h2", {}, "History"),
    history,
  );
  get("/exchanges/latest")
    .then((data) => fill(latest, latestCard(data?.exchange)))
    .catch((error) => fill(latest, errorBox(error)));

  let token = null;
  const rowAttrs = (x) => ({ dataset: { exchange: x.exchange_id } });
  try {
    const first = await get("/exchanges", { limit: 50 });
    token = first.next_page_token;
    const list = table(COLUMNS, first.exchanges || [], { caption: "Exchanges, newest first", empty: "No exchange yet.", rowAttrs, stack: true });
    fill(history, list);
    const tbody = list.querySelector("tbody");
    if (token && tbody) {
      history.append(
        h(
          "div",
          { class: "actions" },
          moreButton("Load more", async () => {
            const data = await get("/exchanges", { limit: 50, page_token: token });
            token = data.next_page_token;
            const extra = table(COLUMNS, data.exchanges || [], { rowAttrs, stack: true }).querySelector("tbody");
            if (extra) tbody.append(...extra.children);
            return Boolean(token);
          }),
        ),
      );
    }
  } catch (error) {
    fill(history, errorBox(error));
  }
}
