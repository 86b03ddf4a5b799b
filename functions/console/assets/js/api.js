// The console's one way to the tenant API: /console/v1/tenants/<tenant>/... with the session.
//
// The session arrives in the URL's fragment (#tenant=<id>&session=<token>), which a browser never
// sends to a server; it is kept in sessionStorage (this tab only) and the fragment is wiped at once.
// Locally (`qbo-link dev`) /console/?tenant=<id> works without a session: the local gateway trusts
// the developer's browser as it trusts every caller.

const STORE_KEY = "qbo-link-console";

/** A problem's words; a body field's name leads (`master customer id: is required when …`). */
function problemText(problem) {
  const where = Array.isArray(problem.loc) ? problem.loc : [];
  const name = where[0] === "body" && typeof where[where.length - 1] === "string" ? where[where.length - 1] : "";
  return name && name !== "body" ? `${name.replaceAll("_", " ")}: ${problem.msg}` : problem.msg;
}

export class ApiError extends Error {
  constructor(status, problems, fallback) {
    const text = problems.map(problemText).filter(Boolean).join("; ") || fallback;
    super(text);
    this.status = status;
    this.problems = problems; // [{loc, msg, type}] — the API's one error shape
  }

  get type() {
    return this.problems[0]?.type ?? "";
  }
}

function readSession() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const query = new URLSearchParams(location.search);
  let saved = {};
  try {
    saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "{}");
  } catch {
    saved = {};
  }
  if (fragment.get("session") || fragment.get("tenant")) {
    saved = { tenant: fragment.get("tenant") || saved.tenant, token: fragment.get("session") || null };
    // The token must not stay in the address bar, the history or a bookmark.
    history.replaceState(null, "", location.pathname + location.search + "#/connection");
  } else if (query.get("tenant") && query.get("tenant") !== saved.tenant) {
    saved = { tenant: query.get("tenant"), token: null };
  }
  if (saved.tenant) sessionStorage.setItem(STORE_KEY, JSON.stringify(saved));
  return saved;
}

const session = readSession();

export const tenant = session.tenant || "";

/** The console's own URL prefix (the part before /console/), so the stack may sit under a stage. */
export const root = location.pathname.replace(/\/console(\/.*)?$/, "");

export function consoleUrl() {
  return `${location.origin}${root}/console/?tenant=${encodeURIComponent(tenant)}`;
}

function url(path, query) {
  const base = `${root}/console/v1/tenants/${encodeURIComponent(tenant)}${path}`;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${base}?${text}` : base;
}

/** Calls the tenant's route; resolves with the parsed JSON, rejects with an ApiError. */
export async function call(method, path, { query, body } = {}) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, [], `QBO Link could not be reached (${error.message}). Check your connection and try again.`);
  }
  const text = await answer.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!answer.ok) {
    const problems = Array.isArray(data?.detail) ? data.detail : [];
    const fallback =
      answer.status === 401
        ? "Your console session has ended. Open the console again from your practice-management app."
        : `QBO Link answered ${answer.status}.`;
    throw new ApiError(answer.status, problems, fallback);
  }
  return data;
}

export const get = (path, query) => call("GET", path, { query });
export const post = (path, body, query) => call("POST", path, { body, query });
export const put = (path, body) => call("PUT", path, { body });
export const patch = (path, body) => call("PATCH", path, { body });
export const del = (path, query) => call("DELETE", path, { query });

/** Each page of a paged route in turn, following next_page_token, at most `max` of them. */
export async function* pages(path, query = {}, max = 20) {
  let token = null;
  for (let page = 0; page < max; page += 1) {
    const data = await get(path, { ...query, page_token: token });
    yield data;
    token = data.next_page_token;
    if (!token) return;
  }
}

/** Every page of a paged list route, concatenated (for the lists a form offers, never the big tabs). */
export async function all(path, field, query = {}, max = 20) {
  const items = [];
  for await (const data of pages(path, { limit: 200, ...query }, max)) items.push(...(data[field] || []));
  return items;
}
