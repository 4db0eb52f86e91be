// Helpers shared by the page scripts: CSRF-aware JSON requests and small DOM utilities.
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export async function api(method, url, body, extraHeaders = {}) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error((data && data.error && data.error.message) || response.statusText);
    error.status = response.status;
    error.field = data && data.error ? data.error.field : undefined;
    throw error;
  }
  return data;
}

// The page's words in its language: the JSON the template wrote with ui_text(), by key,
// with %(name)s placeholders filled from ``values``.
let words = null;
export function t(key, values = {}) {
  if (words === null) {
    const element = document.getElementById("ui-text");
    words = element ? JSON.parse(element.textContent) : {};
  }
  const text = words[key] ?? key;
  return text
    .replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""))
    .replace(/%%/g, "%");
}
