// Settings: go-live date, client types, auto-create customers, posting mode and its master customer,
// the revenue and deposit accounts chosen from QuickBooks' own lists (never Accounts Receivable).

import { get, pages, patch } from "../api.js";
import { add, busy, errorBox, field, h, notify } from "../ui.js";

const REVENUE_TYPES = ["Income", "Other Income"];
const DEPOSIT_TYPES = ["Bank", "Other Current Asset"];

/** Both sides of a kind, every page (the lists a form offers; QuickBooks' side is cached). */
async function wholeKind(kind) {
  const app = [];
  const qbo = [];
  for await (const data of pages(`/mappings/${kind}`, { limit: 1000 })) {
    app.push(...data.app);
    qbo.push(...data.qbo);
  }
  return { app, qbo };
}

function select(options, current, emptyLabel) {
  const control = h("select", {}, h("option", { value: "" }, emptyLabel));
  for (const option of options) {
    control.append(h("option", { value: option.id, selected: option.id === current }, option.label));
  }
  if (current && !options.some((o) => o.id === current)) {
    control.append(h("option", { value: current, selected: true }, `QuickBooks id ${current} (not in the list)`));
  }
  return control;
}

function checkbox(label, checked, hint) {
  const input = h("input", { type: "checkbox", checked });
  const id = `s-${label.replace(/\W+/g, "-").toLowerCase()}`;
  input.id = id;
  const node = h("div", {}, h("div", { class: "check" }, input, h("label", { for: id }, label)), hint ? h("p", { class: "hint indent" }, hint) : null);
  return { input, node };
}

export async function render(view) {
  add(view, h("h1", {}, "Settings"));
  let settings;
  let accounts;
  let clients;
  try {
    [settings, accounts, clients] = await Promise.all([get("/settings"), wholeKind("account"), wholeKind("client")]);
  } catch (error) {
    add(view, errorBox(error));
    return;
  }
  const activeAccounts = accounts.qbo.filter((a) => a.active);
  const byName = (a, b) => (a.fully_qualified_name || a.name).localeCompare(b.fully_qualified_name || b.name);
  const accountOption = (a) => ({ id: a.id, label: `${a.fully_qualified_name || a.name} (${a.type})` });
  const revenueAccounts = activeAccounts.filter((a) => REVENUE_TYPES.includes(a.type)).sort(byName).map(accountOption);
  const depositAccounts = activeAccounts.filter((a) => DEPOSIT_TYPES.includes(a.type) && !/^undeposited funds$/i.test(a.name)).sort(byName).map(accountOption);
  const customers = clients.qbo.filter((c) => c.active).sort(byName).map((c) => ({ id: c.id, label: c.fully_qualified_name || c.name }));
  const knownTypes = [...new Set([...clients.app.map((c) => c.type).filter(Boolean), ...settings.client_types])].sort();

  const goLive = h("input", { type: "date", value: settings.go_live_date || "" });
  const pushInvoices = checkbox("Send invoices", settings.push_invoices);
  const pushPayments = checkbox("Send payments", settings.push_payments);
  const pushCredits = checkbox("Send credit memos", settings.push_credits);
  const autoCreate = checkbox("Create a QuickBooks customer for a new client", settings.auto_create_customers, "Off: a document of an unlinked client waits until you link it.");
  const propagate = checkbox("Send voids and deletions", settings.propagate_deletes);
  const typeBoxes = knownTypes.map((type) => ({ type, ...checkbox(type, settings.client_types.includes(type)) }));
  const full = h("input", { type: "radio", name: "posting_mode", value: "full", id: "mode-full", checked: settings.posting_mode !== "summarised" });
  const summarised = h("input", { type: "radio", name: "posting_mode", value: "summarised", id: "mode-summarised", checked: settings.posting_mode === "summarised" });
  const master = select(customers, settings.master_customer_id, "— choose the master customer —");
  const revenue = select(revenueAccounts, settings.revenue_account_id, "Each item's own income account");
  const deposit = select(depositAccounts, settings.deposit_account_id, "Undeposited Funds");
  const masterField = field("Master customer", master, "Every day's invoices go to QuickBooks as one journal entry against this customer.");
  const showMaster = () => {
    masterField.hidden = !summarised.checked;
  };
  full.addEventListener("change", showMaster);
  summarised.addEventListener("change", showMaster);
  showMaster();
  const problems = h("div", { id: "settings-problems" });
  const save = h("button", { type: "submit", id: "save-settings" }, "Save settings");
  const form = h(
    "form",
    { novalidate: true },
    h(
      "fieldset",
      {},
      h("legend", {}, "What is sent to QuickBooks"),
      field("Go-live date", goLive, "Documents dated before it are never sent. Empty: everything is sent."),
      pushInvoices.node,
      pushPayments.node,
      pushCredits.node,
      propagate.node,
      autoCreate.node,
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Client types that synchronize"),
      typeBoxes.length ? typeBoxes.map((b) => b.node) : h("p", { class: "muted" }, "The app has told QBO Link no client types."),
      h("p", { class: "hint" }, "None ticked: every client synchronizes."),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Posting mode"),
      h("div", { class: "check" }, full, h("label", { for: "mode-full" }, "Full: each invoice becomes a QuickBooks invoice")),
      h("div", { class: "check" }, summarised, h("label", { for: "mode-summarised" }, "Summarised: one journal entry per day")),
      masterField,
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Accounts (from QuickBooks' chart of accounts)"),
      field("Revenue account", revenue, "Income accounts only. Empty: each line goes to its item's own income account."),
      field("Deposit account for payments", deposit, "Bank and other current asset accounts. Empty: payments go to Undeposited Funds, ready for a bank deposit in QuickBooks."),
      h("p", { class: "hint" }, "Accounts Receivable is never offered: QuickBooks keeps it for open invoices."),
    ),
    problems,
    h("div", { class: "actions" }, save),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    const wanted = {
      go_live_date: goLive.value || null,
      push_invoices: pushInvoices.input.checked,
      push_payments: pushPayments.input.checked,
      push_credits: pushCredits.input.checked,
      propagate_deletes: propagate.input.checked,
      auto_create_customers: autoCreate.input.checked,
      client_types: typeBoxes.filter((b) => b.input.checked).map((b) => b.type),
      posting_mode: summarised.checked ? "summarised" : "full",
      master_customer_id: master.value || null,
      revenue_account_id: revenue.value || null,
      deposit_account_id: deposit.value || null,
    };
    const change = {};
    for (const [key, value] of Object.entries(wanted)) {
      if (JSON.stringify(value) !== JSON.stringify(settings[key])) change[key] = value;
    }
    if (!Object.keys(change).length) {
      notify("Nothing changed.");
      return;
    }
    await busy(save, async () => {
      try {
        settings = await patch("/settings", change);
        notify("Settings saved.");
      } catch (error) {
        problems.replaceChildren(errorBox(error));
        throw error;
      }
    });
  });
  add(view, form);
}
