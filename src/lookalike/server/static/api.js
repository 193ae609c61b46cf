// What every part of the page shares: calling the HTTP API (docs/http-api.md), showing its
// errors, and building elements.

export const $ = (selector) => document.querySelector(selector);

export function token() {
  return $("#token").value.trim();
}

function describe(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {  // pydantic's validation errors
    return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  }
  return JSON.stringify(detail);
}

export async function api(path, { method = "GET", body, json } = {}) {
  const headers = {};
  if (method !== "GET" && token()) headers.Authorization = `Bearer ${token()}`;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers, body });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const reason = data && data.detail !== undefined ? describe(data.detail) : response.statusText;
    // A refused write: say where the token goes, not only what the server answered.
    const hint = response.status === 401 || response.status === 403
      ? " (changes need the server's token: enter it in the Token box at the top)" : "";
    throw new Error(`${method} ${path}: ${response.status} ${reason}${hint}`);
  }
  return data;
}

export function showError(error) {
  const box = $("#error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

export function showMessage(text) {
  $("#message").textContent = text;
  $("#message").hidden = !text;
}

// Runs an action, showing its error instead of losing it.
export async function attempt(action) {
  showError(null);
  try {
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

export function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export function fmt(value) {
  return Number.isInteger(value) ? String(value) : Number(value).toFixed(3);
}

export function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
