// Every call the console makes to the API: same origin, the HttpOnly session cookie sent by the
// browser, and the session's CSRF value echoed in a header (lighthouse.console.logic.authorization).

export const apiRoot = new URL("../", document.baseURI).pathname.replace(/\/$/, "");
let csrf = null; // in memory only: never in localStorage or sessionStorage

export function setCsrf(value) {
  csrf = value;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
    this.details = body?.error?.details || {};
  }
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (csrf) headers["X-Lighthouse-CSRF"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(apiRoot + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { text };
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export function randomHex(bytes = 16) {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}

// POST /console/session takes the same signed proof as POST /sessions: HMAC-SHA256 of
// "agent_id\ntimestamp\nnonce" keyed with the secret. The secret never leaves this page.
export async function signIn(agentId, secret) {
  const timestamp = Math.floor(Date.now() / 1000);
  const nonce = randomHex(16);
  const key = await crypto.subtle.importKey(
    "raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${agentId}\n${timestamp}\n${nonce}`));
  const signature = Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
  const session = await api("/console/session", {
    method: "POST",
    body: { agent_id: agentId, timestamp, nonce, signature },
  });
  setCsrf(session.csrf);
  return session;
}

export async function resumeSession() {
  const session = await api("/console/session");
  setCsrf(session.csrf);
  return session;
}

export async function signOut() {
  await api("/console/session", { method: "DELETE" });
  setCsrf(null);
}
