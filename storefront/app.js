// The storefront: plain JavaScript against the shop's JSON API, served by the API itself.
"use strict";

// `pending`: the code the shopper was sent and is to enter, a sign-in's ({ address }) or a
// registration's ({ address: the email, phone }).
const state = { token: localStorage.getItem("token"), email: localStorage.getItem("email"), category: null, query: "", cursor: null, detailTimer: null, pending: null };
const $ = (id) => document.getElementById(id);
const money = (cents) => `$${(cents / 100).toFixed(2)}`;

function notice(message, kind = "error") {
  const el = $("notice");
  el.textContent = message;
  el.className = kind === "info" ? "info" : "";
  el.hidden = !message;
}

// Every call goes through here: JSON in and out, the API's error message shown on failure.
async function api(path, { method = "GET", body, headers = {} } = {}) {
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
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && state.token) signedOut();
    const message = data && data.error ? data.error.message : `HTTP ${response.status}`;
    const retry = response.headers.get("retry-after");
    const error = new Error(response.status === 429 ? `${message.split(";")[0]}. Try again in ${retry || "a few"} seconds.` : message);
    error.status = response.status;
    error.code = data && data.error ? data.error.code : "";
    throw error;
  }
  return data;
}

const guarded = (fn) => async (...args) => {
  try {
    await fn(...args);
  } catch (e) {
    notice(e.message);
  }
};

function signedOut() {
  state.token = null;
  localStorage.removeItem("token");
  renderSession();
}

function renderSession() {
  const signedIn = Boolean(state.token);
  $("auth").hidden = signedIn;
  $("sessions").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  $("who").textContent = signedIn ? `Signed in as ${state.email}` : "Not signed in";
  $("checkout").disabled = !signedIn;
  $("seller").hidden = !signedIn;
  if (signedIn) {
    refreshCart();
    refreshOrders();
    guarded(refreshSessions)();
    guarded(refreshSeller)();
  } else {
    $("cart-lines").replaceChildren();
    $("order-list").replaceChildren();
    $("cart-total").textContent = money(0);
  }
}

function signedIn(data) {
  state.token = data.session_token;
  state.email = data.user.email;
  localStorage.setItem("token", state.token);
  localStorage.setItem("email", state.email);
  notice("");
  renderSession();
}

// "ana@example.com" is an email address, anything else a phone number.
function addressBody(address) {
  return address.includes("@") ? { email: address } : { phone_number: address };
}

// Asks for a code (a registration's when `pending` has a phone number, else a sign-in's), then
// shows the step where it is entered: enter, resend, or go back.
async function requestCode(pending) {
  const registering = Boolean(pending.phone);
  const sent = registering
    ? await api("/users/register", { method: "POST", body: { email: pending.address, phone_number: pending.phone } })
    : await api("/sessions", { method: "POST", body: addressBody(pending.address) });
  state.pending = pending;
  const minutes = Math.round(sent.expires_in_secs / 60);
  $("code-form").hidden = true;
  $("register").hidden = true;
  $("verify-form").hidden = false;
  $("verify").textContent = registering ? "Register" : "Sign in";
  $("code-sent").textContent = registering
    ? `A code is on its way to ${pending.address}: enter it to finish registering. It works for ${minutes} minutes.`
    : `If an account has ${pending.address}, a code is on its way. It works for ${minutes} minutes.`;
  $("code").value = "";
  $("code").focus();
  notice("");
}

// Registration mails a code to the email address; the account exists once it is entered.
async function register(event) {
  event.preventDefault();
  await requestCode({ address: $("email").value.trim(), phone: $("phone").value.trim() });
}

async function sendCode(event) {
  event.preventDefault();
  await requestCode({ address: $("address").value.trim() });
}

async function verifyCode(event) {
  event.preventDefault();
  try {
    signedIn(await api("/sessions/verify", { method: "POST", body: { ...addressBody(state.pending.address), code: $("code").value.trim() } }));
    otherAddress();
  } catch (e) {
    if (e.code === "invalid_code") throw new Error("That code is wrong or has expired. Check it, or send a new code.");
    throw e;
  }
}

function otherAddress() {
  state.pending = null;
  $("verify-form").hidden = true;
  $("code-form").hidden = false;
  $("register").hidden = false;
  notice("");
}

async function refreshSessions() {
  const sessions = await api("/sessions");
  $("session-list").replaceChildren(...sessions.map((s) =>
    el("li", { "data-testid": "session-entry" },
      el("span", {}, s.current ? "This browser" : (s.user_agent || "Unknown client"), el("br"),
        el("small", {}, `since ${new Date(s.created_at).toLocaleString()} · last used ${new Date(s.last_seen_at).toLocaleString()}${s.address ? ` · ${s.address}` : ""}`)),
      s.current ? el("span", { class: "status" }, "current")
        : el("button", { class: "link", "data-testid": "end-session", onclick: () => endSession(s.id) }, "End"))));
}

async function endSession(id) {
  await api(`/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
  await refreshSessions();
}

async function showMailbox() {
  const config = await api("/storefront/config.json");
  if (config.dev_mailbox_url) {
    $("mailbox-link").href = config.dev_mailbox_url;
    $("mailbox").hidden = false;
  }
}

function el(tag, attrs = {}, ...children) {
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

function stockText(n) {
  return n > 0 ? `${n} in stock` : "Sold out";
}

// Category chips with how many of their products are in stock.
async function loadCategories() {
  const categories = await api("/categories");
  const chip = (label, value, count) =>
    el("button", { "aria-pressed": String(state.category === value), "data-testid": `category-${label}`, onclick: () => selectCategory(value) },
      label, count === undefined ? "" : el("small", { class: "count", "data-testid": "category-count" }, ` ${count}`));
  $("categories").replaceChildren(chip("all", null), ...categories.map((c) => chip(c.category, c.category, c.in_stock)));
}

async function selectCategory(category) {
  state.category = category;
  state.cursor = null;
  $("products").replaceChildren();
  await loadCategories();
  await loadProducts();
}

async function search(event) {
  event.preventDefault();
  state.query = $("search").value.trim();
  await selectCategory(state.category);
}

// A product's picture: its seller's, or the one the shop draws for it.
const imageOf = (p) => p.image_url || `/products/${p.id}/image.svg`;

function addButton(p, testId = "add") {
  const soldOut = p.available_quantity <= 0;
  const button = el("button", { "data-testid": testId, onclick: () => addToCart(p.id) }, soldOut ? "Sold out" : "Add to cart");
  button.disabled = soldOut;
  return button;
}

async function loadProducts() {
  const params = new URLSearchParams({ limit: "12" });
  if (state.query) params.set("q", state.query);
  if (state.category) params.set("category", state.category);
  if (state.cursor) params.set("cursor", state.cursor);
  const page = await api(`/products?${params}`);
  for (const p of page.items) {
    $("products").append(
      el("li", { "data-testid": "product", "data-id": String(p.id) },
        el("img", { src: imageOf(p), alt: "", loading: "lazy", "data-testid": "product-image" }),
        el("button", { class: "link name", "data-testid": "product-name", onclick: () => showDetail(p.id) }, p.name),
        el("span", { class: "price" }, money(p.price_cents)),
        el("span", { class: p.available_quantity > 0 ? "stock" : "stock out" }, stockText(p.available_quantity)),
        addButton(p)));
  }
  if (!page.items.length && !state.cursor) {
    $("products").append(el("li", { class: "empty", "data-testid": "no-results" }, state.query ? `Nothing matches “${state.query}”.` : "No products yet."));
  }
  state.cursor = page.next_cursor;
  $("more").hidden = !state.cursor;
}

async function showDetail(id) {
  clearInterval(state.detailTimer);
  const render = async () => {
    const p = await api(`/products/${id}`);
    $("detail").replaceChildren(
      el("img", { src: imageOf(p), alt: "", class: "detail-image" }),
      el("h2", {}, p.name),
      el("p", {}, p.description || ""),
      el("p", {}, el("span", { class: "price" }, money(p.price_cents)), " · ",
        el("span", { class: p.available_quantity > 0 ? "stock" : "stock out", "data-testid": "detail-stock" }, stockText(p.available_quantity)),
        " (live)"),
      el("div", { class: "row" },
        addButton(p, "detail-add"),
        el("button", { class: "secondary", onclick: () => { clearInterval(state.detailTimer); $("detail").hidden = true; } }, "Close")));
    $("detail").hidden = false;
  };
  await render();
  $("detail").scrollIntoView({ block: "nearest" });
  state.detailTimer = setInterval(guarded(render), 3000);
}

async function addToCart(productId) {
  if (!state.token) throw new Error("Sign in or register to use the cart");
  renderCart(await api("/cart/add", { method: "POST", body: { product_id: productId, quantity: 1 } }));
  notice("");
}

function renderCart(cart) {
  $("cart-lines").replaceChildren(...cart.items.map((line) =>
    el("li", { "data-testid": "cart-line" },
      el("span", {}, line.name, el("br"), el("small", {}, `${money(line.unit_price_cents)} each`)),
      el("input", { type: "number", min: "0", max: "100", value: String(line.quantity), "aria-label": `Quantity of ${line.name}`, onchange: (e) => updateLine(line.product_id, e.target.value) }),
      el("span", {}, money(line.line_total_cents)),
      el("button", { class: "link", "data-testid": "remove", onclick: () => removeLine(line.product_id) }, "Remove"))));
  $("cart-total").textContent = money(cart.total_cents);
  $("checkout").disabled = !state.token || cart.items.length === 0;
}

async function refreshCart() {
  renderCart(await api("/cart"));
}

async function updateLine(productId, quantity) {
  try {
    renderCart(await api("/cart/update", { method: "POST", body: { product_id: productId, quantity: Number(quantity) } }));
  } catch (e) {
    await refreshCart(); // show the quantity the cart really holds
    throw e;
  }
}

async function removeLine(productId) {
  renderCart(await api("/cart/remove", { method: "POST", body: { product_id: productId } }));
}

const CANCELLABLE = ["PENDING", "CONFIRMED"];

function orderItem(order) {
  return el("li", { "data-testid": "order", "data-id": order.id },
    el("span", {}, `${new Date(order.created_at).toLocaleString()} · ${money(order.total_cents)}`),
    el("span", { class: "row" },
      el("button", { class: "link", "data-testid": "cancel-order", hidden: !CANCELLABLE.includes(order.status), onclick: () => cancelOrder(order.id) }, "Cancel"),
      el("span", { class: `status ${order.status}`, "data-testid": "order-status" }, order.status)));
}

// Cancels an order, then follows its lines until their products' lanes have given every unit
// back, and says so.
async function cancelOrder(orderId) {
  const order = await api(`/orders/${orderId}/cancel`, { method: "POST" });
  await showStatus(orderId, order.status);
  notice("Order cancelled: returning its items to stock…", "info");
  const deadline = Date.now() + 30000;
  let lines = order.items;
  while (lines.some((l) => l.status === "PENDING" || l.status === "RESERVED") && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    lines = (await api(`/orders/${orderId}`)).items;
  }
  const back = lines.filter((l) => l.status === "RELEASED").reduce((n, l) => n + l.quantity, 0);
  notice(`Order cancelled: ${back} item${back === 1 ? "" : "s"} back in stock.`, "info");
  await selectCategory(state.category);
  if (!$("seller").hidden) await refreshSeller();
}

async function refreshOrders() {
  const page = await api("/orders?limit=10");
  $("order-list").replaceChildren(...page.items.map(orderItem));
}

// Follows an order over Server-Sent Events. EventSource cannot send the Authorization header,
// so the stream is read with fetch.
async function watchOrder(orderId) {
  const response = await fetch(`/orders/${orderId}/events`, { headers: { authorization: `Bearer ${state.token}` } });
  if (!response.ok || !response.body) throw new Error("Cannot follow the order's status");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = frame.split("\n").find((l) => l.startsWith("data:"));
      if (data) await showStatus(orderId, JSON.parse(data.slice(5)).status);
    }
  }
}

async function showStatus(orderId, status) {
  const row = document.querySelector(`[data-testid=order][data-id="${orderId}"]`);
  if (row) {
    const item = row.querySelector("[data-testid=order-status]");
    item.textContent = status;
    item.className = `status ${status}`;
    row.querySelector("[data-testid=cancel-order]").hidden = !CANCELLABLE.includes(status);
  }
  if (status === "CONFIRMED" || status === "REJECTED") {
    await selectCategory(state.category); // fresh stock
    if (!$("seller").hidden) await refreshSeller(); // a sale of one's own product shows there
  }
  if (status === "CONFIRMED") {
    notice("Order confirmed: thank you!", "info");
    await refreshCart();
  } else if (status === "REJECTED") {
    const order = await api(`/orders/${orderId}`);
    const reasons = order.items.filter((l) => l.reason).map((l) => l.reason).join("; ");
    notice(`Order rejected, your cart is kept: ${reasons || "not enough stock"}`);
  }
}

async function checkout() {
  $("checkout").disabled = true;
  try {
    // One key per click: a retried request cannot place a second order. (randomUUID exists only
    // in secure contexts, so plain-HTTP hosts get a random key of the same strength.)
    const key = crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    const accepted = await api("/orders/checkout", { method: "POST", headers: { "idempotency-key": key } });
    notice("Order placed: waiting for confirmation…", "info");
    await refreshOrders();
    await watchOrder(accepted.order_id);
  } finally {
    $("checkout").disabled = false;
  }
}

// The seller's page: list a product, restock one through its lane, see stock and sales.
async function refreshSeller() {
  const [products, sales] = await Promise.all([api("/sellers/me/products?limit=50"), api("/sellers/me/orders?limit=10")]);
  $("my-products").replaceChildren(...products.items.map((p) =>
    el("li", { "data-testid": "my-product", "data-id": String(p.id) },
      el("span", {}, el("strong", {}, p.name), el("span", { class: "stock", "data-testid": "my-stock" }, ` ${p.available_quantity} in stock · ${p.units_sold} sold · ${p.units_reserved} reserved`)),
      el("form", { class: "row", "data-testid": "restock-form", onsubmit: (event) => restock(event, p.id) },
        el("input", { type: "number", min: "1", max: "1000000", value: "10", "aria-label": `Units to add to ${p.name}`, "data-testid": "restock-quantity" }),
        el("button", { type: "submit", class: "secondary", "data-testid": "restock" }, "Restock")))));
  if (!products.items.length) $("my-products").append(el("li", { class: "empty" }, "Nothing listed yet."));
  $("my-sales").replaceChildren(...sales.items.map((s) =>
    el("li", { "data-testid": "sale" },
      el("span", {}, `${s.quantity} × ${s.product_name}`),
      el("span", { class: `status ${s.order_status}`, "data-testid": "sale-status" }, s.order_status))));
  if (!sales.items.length) $("my-sales").append(el("li", { class: "empty" }, "No sales yet."));
}

async function restock(event, productId) {
  event.preventDefault();
  const quantity = Number(event.target.querySelector("input").value);
  const result = await api(`/products/${productId}/restock`, { method: "POST", body: { quantity } });
  notice(result.status === "PENDING" ? "Restock recorded: it will show in a moment." : `Restocked: ${result.available_quantity} in stock.`, "info");
  await refreshSeller();
  await selectCategory(state.category);
}

async function listProduct(event) {
  event.preventDefault();
  const body = {
    name: $("new-name").value,
    price_cents: Math.round(Number($("new-price").value) * 100),
    available_quantity: Number($("new-stock").value),
    category: $("new-category").value.trim().toLowerCase(),
  };
  const product = await api("/products", { method: "POST", body });
  event.target.reset();
  notice(`Listed: ${product.name}.`, "info");
  await refreshSeller();
  await loadCategories();
}

$("register-form").addEventListener("submit", guarded(register));
$("list-form").addEventListener("submit", guarded(listProduct));
$("code-form").addEventListener("submit", guarded(sendCode));
$("verify-form").addEventListener("submit", guarded(verifyCode));
$("resend").addEventListener("click", guarded(() => requestCode(state.pending)));
$("other-address").addEventListener("click", otherAddress);
$("sign-out").addEventListener("click", guarded(async () => {
  await api("/sessions/current", { method: "DELETE" }).catch(() => {});
  signedOut();
}));
$("sign-out-everywhere").addEventListener("click", guarded(async () => {
  await api("/sessions", { method: "DELETE" });
  signedOut();
  notice("Signed out everywhere: every session has ended.", "info");
}));
guarded(showMailbox)();
$("more").addEventListener("click", guarded(loadProducts));
$("search-form").addEventListener("submit", guarded(search));
$("checkout").addEventListener("click", guarded(checkout));
renderSession();
guarded(selectCategory)(null);
