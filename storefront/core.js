// What every part of the storefront shares: its state, the API client, notices, and building
// elements (never from markup: names and descriptions are the sellers' text).

// `pending`: the code the shopper was sent and is to enter, a sign-in's ({ address }) or a
// registration's ({ address: the email, phone }). `watching`: the orders being followed, each
// with the promise that settles once it is decided.
export const state = {
  token: localStorage.getItem("token"), email: localStorage.getItem("email"), category: null, query: "", cursor: null,
  detailTimer: null, pending: null, watching: new Map(),
};
export const $ = (id) => document.getElementById(id);
export const money = (cents) => `$${(cents / 100).toFixed(2)}`;
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The server's clock less this browser's, as its Date header tells it (to the second, so a skew
// under 2 s counts as none): a sale opens by the shop's clock, not by this one.
let skew = 0;
export const serverNow = () => Date.now() + skew;

function noteServerDate(response) {
  const date = Date.parse(response.headers.get("date") ?? "");
  if (Number.isNaN(date)) return;
  const seen = date + 500 - Date.now();
  skew = Math.abs(seen) >= 2000 ? seen : 0;
}

// A message (text, or nodes such as a live countdown) above the page; empty hides it.
export function notice(message, kind = "error") {
  const node = $("notice");
  if (Array.isArray(message)) node.replaceChildren(...message);
  else node.textContent = message;
  node.className = kind === "info" ? "info" : "";
  node.hidden = !message || message.length === 0;
}

// Every call goes through here: JSON in and out, the API's error shown on failure (its code and
// the fields beside it in `error.detail`). A refused session signs out ("signed-out" event).
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (state.token) init.headers.authorization = `Bearer ${state.token}`;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new Error(`Network error: the shop cannot be reached (${e.message})`);
  }
  noteServerDate(response);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && state.token) document.dispatchEvent(new Event("signed-out"));
    const message = data && data.error ? data.error.message : `HTTP ${response.status}`;
    const retry = response.headers.get("retry-after");
    const error = new Error(response.status === 429 ? `${message.split(";")[0]}. Try again in ${retry || "a few"} seconds.` : message);
    error.status = response.status;
    error.code = data && data.error ? data.error.code : "";
    error.detail = data && data.error ? data.error : {};
    throw error;
  }
  return data;
}

export const guarded = (fn) => async (...args) => {
  try {
    await fn(...args);
  } catch (e) {
    notice(e.message);
  }
};

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), guarded(value));
    else if (key === "class") node.className = value;
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false) node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// Products by id, as last read (order lines and place events name their products only by id);
// `fresh` reads it again.
const products = new Map();

export function remember(product) {
  products.set(product.id, product);
}

export async function productOf(id, fresh = false) {
  if (fresh || !products.has(id)) remember(await api(`/products/${id}`));
  return products.get(id);
}
