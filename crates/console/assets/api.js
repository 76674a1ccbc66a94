// The JSON API, called with the session cookie. State-changing calls carry the CSRF token the
// login gave (the API refuses them without it), so another site cannot act with the cookie.

let csrfToken = sessionStorage.getItem("vigil.csrf") || "";

export function setCsrf(token) {
  csrfToken = token || "";
  if (csrfToken) sessionStorage.setItem("vigil.csrf", csrfToken);
  else sessionStorage.removeItem("vigil.csrf");
}

/** An API refusal: its status, stable code and message. */
export class ApiProblem extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls `path`. `body`: an object (sent as JSON) or FormData (multipart). `headers`: extra
 * headers such as the case and reason of a search. Answers the parsed JSON, a Blob for images,
 * or null for 204.
 */
export async function call(method, path, { body, headers = {}, as = "json" } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (method !== "GET" && method !== "HEAD" && csrfToken) init.headers["X-CSRF-Token"] = csrfToken;
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    let code = "http_" + response.status;
    let message = response.statusText;
    try {
      const problem = await response.json();
      code = problem.error?.code ?? code;
      message = problem.error?.message ?? message;
    } catch (_) {
      // not the API's error shape: keep the status
    }
    throw new ApiProblem(response.status, code, message);
  }
  if (response.status === 204) return null;
  if (as === "blob") return response.blob();
  return response.json();
}

/** An image from the API as an object URL (so headers such as the case can be sent). */
export async function imageUrl(path, headers = {}) {
  const blob = await call("GET", path, { headers, as: "blob" });
  return URL.createObjectURL(blob);
}
