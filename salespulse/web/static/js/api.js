// The page's client of its own JSON API (docs/web-api.md). URLs are relative, so the page works
// under any path prefix a reverse proxy publishes it at.

const TOKEN_KEY = "salespulse.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** GET api/v1/<endpoint>?<params>; the JSON body, or an ApiError carrying the API's message. */
export async function get(endpoint, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const headers = { Accept: "application/json" };
  const token = savedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(`api/v1/${endpoint}${query.size ? "?" + query : ""}`, { headers, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, "network", String(error.message || error));
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.message ? body.message : `HTTP ${response.status}`;
    throw new ApiError(response.status, body && body.error ? body.error : "http", message);
  }
  return body;
}
