// Connection: the company, its health in plain words, token expiry, onboarding; Connect, Reconnect
// and Disconnect (keep or remove the mappings).

import { consoleUrl, del, get, post } from "../api.js";
import { KIND_LABELS, add, busy, confirm, errorBox, fill, formatTime, h, notify } from "../ui.js";

const HEALTH_WORDS = {
  healthy: ["Connected", "QBO Link is exchanging data with QuickBooks."],
  refresh_failing: ["Connected, with trouble", "QuickBooks did not renew access on the last try; QBO Link keeps trying by itself."],
  needs_reconnect: ["Reconnect needed", "QuickBooks no longer accepts QBO Link's access. Reconnect to resume; nothing waiting is lost."],
  revoked: ["Disconnected in QuickBooks", "Someone disconnected QBO Link from inside QuickBooks. Reconnect to resume; nothing waiting is lost."],
  disconnected: ["Disconnected", "This firm disconnected QuickBooks. Documents the app sends wait until it connects again."],
};

const FAILURE_WORDS = {
  access_denied: "access was declined on QuickBooks' page",
  authorization_expired: "the sign-in at Intuit took too long; start again",
  intuit_unavailable: "Intuit did not answer; try again in a few minutes",
  intuit_configuration: "the app's Intuit keys are refused: tell your app's support",
  missing_code: "Intuit sent no authorization; start again",
  authorization_code_used: "that authorization was already used; start again",
  realm_mismatch: "another company was chosen at Intuit than the one being reconnected",
  realm_already_connected: "that QuickBooks company is already connected to another firm",
  tenant_connected_to_another_company:
    "this firm is still linked to another QuickBooks company: choose that company at Intuit, or disconnect removing the mappings first",
};

const RETURN_WORDS = {
  connected: ["success", "QuickBooks is connected."],
  denied: ["warning", "The connection was not made: access was declined on QuickBooks' page."],
  error: ["error", "QuickBooks could not complete the connection"],
  invalid_state: ["error", "That connection link expired or was already used. Start again with Connect."],
};

/** The banner after Intuit's consent sent the browser back here (?status=…&reason=…). */
function returnBanner() {
  const query = new URLSearchParams(location.search);
  const status = query.get("status");
  if (!status) return null;
  const [kind, text] = RETURN_WORDS[status] || ["error", `The connection ended with "${status}".`];
  const reason = query.get("reason");
  // The status has been read: drop it from the address bar so a reload does not show it again.
  history.replaceState(null, "", `${location.pathname}?tenant=${encodeURIComponent(query.get("tenant") || "")}${location.hash}`);
  const why = reason ? FAILURE_WORDS[reason] || reason.replaceAll("_", " ") : "";
  return h("div", { class: kind, role: "status", id: "return-status" }, text, status === "error" ? (why ? `: ${why}.` : ".") : "");
}

async function startConnect(button) {
  await busy(button, async () => {
    const started = await post("/connection", { return_url: consoleUrl() });
    // Intuit's consent page refuses to be framed: inside the host app's frame, open it on top.
    if (window.top !== window.self) window.open(started.authorization_url, "_blank", "noopener");
    else location.assign(started.authorization_url);
  });
}

function expiryNotice(connection) {
  const days = connection.hard_expires_in_days;
  if (typeof days === "number" && days <= 30) {
    return h(
      "div",
      { class: "warning", role: "status" },
      `QuickBooks' authorization ends in ${days} day${days === 1 ? "" : "s"} (${formatTime(connection.hard_expires_at)}). Reconnect before then to keep syncing.`,
    );
  }
  return null;
}

function onboardingCard(onboarding) {
  if (!onboarding) return null;
  const kinds = Object.keys(KIND_LABELS);
  const linked = kinds.reduce((sum, k) => sum + (onboarding.linked?.[k] || 0), 0);
  const open = kinds.reduce((sum, k) => sum + (onboarding.unmatched?.[k] || 0), 0);
  const percent = linked + open ? Math.round((100 * linked) / (linked + open)) : 100;
  const words = {
    pending: "QuickBooks' lists will be read right after connecting.",
    running: "Reading QuickBooks' lists and matching them with the app's…",
    finished: `Lists read and matched ${formatTime(onboarding.finished_at)}: ${linked} linked, ${open} of the app's entries still to match.`,
    failed: `Reading QuickBooks' lists failed: ${onboarding.error || "unknown error"}. Use Refresh on a match tab to try again.`,
  };
  return h(
    "div",
    { class: "card", id: "onboarding" },
    h("h2", {}, "Onboarding"),
    h("p", {}, words[onboarding.state] || onboarding.state),
    h("div", { class: "progress", role: "progressbar", "aria-label": "Share of the app's entries linked", "aria-valuenow": percent, "aria-valuemin": 0, "aria-valuemax": 100 }, h("span", { style: null, dataset: { percent } })),
    h(
      "ul",
      {},
      kinds
        .filter((k) => onboarding.linked?.[k] || onboarding.unmatched?.[k])
        .map((k) => h("li", {}, h("a", { href: `#/match/${k}` }, KIND_LABELS[k]), `: ${onboarding.linked?.[k] || 0} linked, ${onboarding.unmatched?.[k] || 0} to match`)),
    ),
  );
}

async function disconnect(button, connection, rerender) {
  const keep = h("input", { type: "radio", name: "mappings", value: "keep", id: "keep-mappings", checked: true });
  const remove = h("input", { type: "radio", name: "mappings", value: "remove", id: "remove-mappings" });
  const ok = await confirm(
    `Disconnect ${connection.company_name || "QuickBooks"}?`,
    [
      h("p", {}, "QBO Link stops exchanging data and QuickBooks' access is revoked. Nothing already in QuickBooks changes."),
      h("fieldset", {}, h("legend", {}, "The links between the app's lists and QuickBooks'"),
        h("div", { class: "check" }, keep, h("label", { for: "keep-mappings" }, "Keep them: reconnecting the same company resumes where it stopped.")),
        h("div", { class: "check" }, remove, h("label", { for: "remove-mappings" }, "Remove them: the next company starts matching from scratch.")),
      ),
    ],
    "Disconnect",
  );
  if (!ok) return;
  const mappings = remove.checked ? "remove" : "keep";
  await busy(button, async () => {
    await del("/connection", { mappings });
    notify(mappings === "keep" ? "Disconnected. The links were kept." : "Disconnected. The links were removed.");
    await rerender();
  });
}

export async function render(view, { refreshShell }) {
  const rerender = async () => {
    await render(fill(view), { refreshShell });
    await refreshShell();
  };
  add(view, h("h1", {}, "QuickBooks connection"));
  const banner = returnBanner();
  if (banner) add(view, banner);
  let connection;
  try {
    connection = await get("/connection");
  } catch (error) {
    if (error.status !== 404) {
      add(view, errorBox(error));
      return;
    }
    connection = null; // never connected
  }
  if (!connection || !connection.connected) {
    const before = connection && connection.connected_at; // connected once, then disconnected
    const connect = h("button", { type: "button", id: "connect" }, before ? "Reconnect to QuickBooks" : "Connect to QuickBooks");
    connect.addEventListener("click", () => startConnect(connect));
    const [title, words] = HEALTH_WORDS[connection?.health] || HEALTH_WORDS.disconnected;
    add(
      view,
      h(
        "div",
        { class: "card", id: "company-card" },
        h("h2", {}, before ? title : "Not connected"),
        h(
          "p",
          {},
          before
            ? `${connection.company_name || "The company"} (realm ${connection.realm_id}) was disconnected ${formatTime(connection.disconnected_at)}${connection.keep_mappings ? "; its links were kept." : "; its links were removed."} ${words}`
            : "Connect this firm's QuickBooks Online company. You will sign in to Intuit and choose the company; then QBO Link reads its lists and matches them with the app's.",
        ),
        h("div", { class: "actions" }, connect),
      ),
    );
    return;
  }
  const [title, words] = HEALTH_WORDS[connection.health] || [connection.health, ""];
  const company = connection.company || {};
  const reconnect = h("button", { type: "button", class: connection.health === "healthy" ? "secondary" : "", id: "reconnect" }, "Reconnect");
  reconnect.addEventListener("click", () => startConnect(reconnect));
  const disconnectButton = h("button", { type: "button", class: "secondary", id: "disconnect" }, "Disconnect…");
  disconnectButton.addEventListener("click", () => disconnect(disconnectButton, connection, rerender));
  add(view, 
    expiryNotice(connection),
    h(
      "div",
      { class: "card", id: "company-card" },
      h("h2", {}, connection.company_name || "QuickBooks company"),
      h(
        "dl",
        {},
        h("dt", {}, "Status"),
        h("dd", {}, h("span", { class: `badge health-${connection.health}`, id: "health" }, title), " ", words),
        company.legal_name ? [h("dt", {}, "Legal name"), h("dd", {}, company.legal_name)] : null,
        h("dt", {}, "Company id (realm)"),
        h("dd", { id: "realm" }, connection.realm_id),
        company.country ? [h("dt", {}, "Country, currency"), h("dd", {}, `${company.country}, ${company.currency || ""}`)] : null,
        h("dt", {}, "Connected"),
        h("dd", {}, formatTime(connection.connected_at)),
        h("dt", {}, "Last exchange with QuickBooks"),
        h("dd", {}, formatTime(connection.last_success_at) || "none yet"),
        h("dt", {}, "Authorization valid until"),
        h("dd", {}, formatTime(connection.hard_expires_at)),
      ),
      h("div", { class: "actions" }, reconnect, disconnectButton),
    ),
    (connection.warnings || []).map((w) => h("div", { class: "warning", role: "note" }, w.message)),
    onboardingCard(connection.onboarding),
  );
  const bar = view.querySelector(".progress > span");
  if (bar) bar.style.width = `${bar.dataset.percent}%`; // CSSOM, allowed by a style-src without 'unsafe-inline'
}
