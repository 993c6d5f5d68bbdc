// The storefront: plain JavaScript modules against the shop's JSON API, served by the API itself.
// The shared parts are in core.js, flash-sale drops in drops.js.
import { $, api, el, guarded, money, notice, remember, sleep, state } from "/storefront/core.js";
import { dropBadges, dropEditor, dropFields, lineReason, showPlace, showRefusal } from "/storefront/drops.js";

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
    remember(p);
    $("products").append(
      el("li", { "data-testid": "product", "data-id": String(p.id) },
        el("img", { src: imageOf(p), alt: "", loading: "lazy", "data-testid": "product-image" }),
        el("button", { class: "link name", "data-testid": "product-name", onclick: () => showDetail(p.id) }, p.name),
        el("span", { class: "price" }, money(p.price_cents)),
        el("span", { class: p.available_quantity > 0 ? "stock" : "stock out" }, stockText(p.available_quantity)),
        ...dropBadges(p),
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
    remember(p);
    const badges = dropBadges(p);
    $("detail").replaceChildren(
      el("img", { src: imageOf(p), alt: "", class: "detail-image" }),
      el("h2", {}, p.name),
      el("p", {}, p.description || ""),
      el("p", {}, el("span", { class: "price" }, money(p.price_cents)), " · ",
        el("span", { class: p.available_quantity > 0 ? "stock" : "stock out", "data-testid": "detail-stock" }, stockText(p.available_quantity)),
        " (live)"),
      ...(badges.length ? [el("p", { class: "badges" }, ...badges)] : []),
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
const DECIDED = ["CONFIRMED", "REJECTED", "CANCELLED"];

function orderItem(order) {
  return el("li", { "data-testid": "order", "data-id": order.id },
    el("span", {}, `${new Date(order.created_at).toLocaleString()} · ${money(order.total_cents)}`,
      el("small", { class: "place", "data-testid": "order-place", hidden: true }),
      el("small", { class: "reason", "data-testid": "order-reason", hidden: true })),
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

// The orders, each PENDING one followed until it is decided.
async function refreshOrders() {
  const page = await api("/orders?limit=10");
  $("order-list").replaceChildren(...page.items.map(orderItem));
  page.items.filter((o) => o.status === "PENDING").forEach((o) => guarded(watchOrder)(o.id));
}

// Streams open at once. A browser keeps at most six connections to one host over HTTP/1.1 (for
// all its tabs) and an open stream holds one, so more streams would leave the page's own requests
// waiting until an order is decided. Orders beyond these are polled until a stream is free.
const MAX_STREAMS = 2;
const POLL_MS = 1000;
let streams = 0;

// Follows an order until it is decided (one reader per order: a second call joins the first).
// A stream that ends before (a replica shutting down, a dropped connection) is opened again, up
// to 5 times, a second more each time.
function watchOrder(orderId) {
  if (!state.watching.has(orderId)) {
    const follow = async () => {
      let status = null;
      let tries = 0;
      while (!DECIDED.includes(status) && tries <= 5) {
        if (streams >= MAX_STREAMS) {
          try {
            status = await pollOrder(orderId);
          } catch (e) {
            // Signed out, or not this shopper's order: nothing more to follow. Anything else
            // (rate limited, a replica restarting, the network) is looked at again.
            if ([401, 403, 404].includes(e.status)) throw e;
          }
          if (!DECIDED.includes(status)) await sleep(POLL_MS);
          continue;
        }
        streams++;
        try {
          status = (await readEvents(orderId)) ?? status;
        } finally {
          streams--;
        }
        tries++;
        if (!DECIDED.includes(status) && tries <= 5) await sleep(1000 * tries);
      }
    };
    state.watching.set(orderId, follow().finally(() => state.watching.delete(orderId)));
  }
  return state.watching.get(orderId);
}

// The least `ahead` shown for each polled order: as on its stream, a place never moves back.
const leastAhead = new Map();

// Reads an order once, as its events would tell it: its status, and its place while PENDING.
async function pollOrder(orderId) {
  const order = await api(`/orders/${orderId}`);
  await showStatus(orderId, order.status);
  if (order.status !== "PENDING") {
    leastAhead.delete(orderId);
  } else if (order.ahead != null) {
    const ahead = Math.min(order.ahead, leastAhead.get(orderId) ?? order.ahead);
    leastAhead.set(orderId, ahead);
    await showPlace(orderId, { ahead, lines: order.items.map((i) => ({ product_id: i.product_id, remaining: i.remaining })) });
  }
  return order.status;
}

// Reads an order's Server-Sent Events: `status`, and `place` (its place in line) while it is
// PENDING. Returns the last status read. EventSource cannot send the Authorization header, so
// the stream is read with fetch.
async function readEvents(orderId) {
  let response;
  try {
    response = await fetch(`/orders/${orderId}/events`, { headers: { authorization: `Bearer ${state.token}` } });
  } catch {
    return null; // dropped: opened again
  }
  if (!response.ok || !response.body) throw new Error("Cannot follow the order's status");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let status = null;
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ done: true }));
    if (done) return status;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, cut).split("\n");
      buffer = buffer.slice(cut + 2);
      const field = (name) => lines.find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1).trim();
      const data = field("data");
      if (!data) continue;
      if (field("event") === "place") {
        await showPlace(orderId, JSON.parse(data));
      } else {
        status = JSON.parse(data).status;
        await showStatus(orderId, status);
      }
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
  if (status !== "PENDING") await showPlace(orderId, null);
  if (status === "CONFIRMED" || status === "REJECTED") {
    await selectCategory(state.category); // fresh stock
    if (!$("seller").hidden) await refreshSeller(); // a sale of one's own product shows there
  }
  if (status === "CONFIRMED") {
    notice("Order confirmed: thank you!", "info");
    await refreshCart();
  } else if (status === "REJECTED") {
    const order = await api(`/orders/${orderId}`);
    const reasons = (await Promise.all(order.items.filter((l) => l.reason).map(lineReason))).join("; ");
    notice(`Order rejected, your cart is kept: ${reasons || "not enough stock"}`);
    const reason = document.querySelector(`[data-testid=order][data-id="${orderId}"] [data-testid=order-reason]`);
    if (reason) {
      reason.textContent = reasons;
      reason.hidden = !reasons;
    }
  }
}

async function checkout() {
  $("checkout").disabled = true;
  try {
    // One key per click: a retried request cannot place a second order. (randomUUID exists only
    // in secure contexts, so plain-HTTP hosts get a random key of the same strength.)
    const key = crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    let accepted;
    try {
      accepted = await api("/orders/checkout", { method: "POST", headers: { "idempotency-key": key } });
    } catch (e) {
      if (await showRefusal(e)) return;
      throw e;
    }
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
        el("button", { type: "submit", class: "secondary", "data-testid": "restock" }, "Restock")),
      dropEditor(p, async () => {
        await refreshSeller();
        await selectCategory(state.category);
      }))));
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
    ...dropFields($("new-starts"), $("new-limit")),
  };
  const product = await api("/products", { method: "POST", body });
  event.target.reset();
  notice(`Listed: ${product.name}.`, "info");
  await refreshSeller();
  await loadCategories();
}

document.addEventListener("signed-out", signedOut);
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
