// Flash-sale drops in the storefront: a live countdown to a product's sale and its limit per
// shopper, the refusals that name them, an order's place in line while it is PENDING, and the
// seller's fields that set the start and the limit.
import { api, el, notice, productOf, remember, serverNow } from "/storefront/core.js";

const pad = (n, width = 2) => String(n).padStart(width, "0");

// "2:13", "1:02:13", "3d 4:05:06": whole seconds, rounded up, so "0:00" is never shown before
// the start.
export function countdownText(ms) {
  const total = Math.ceil(ms / 1000);
  const [days, hours, minutes, seconds] = [Math.floor(total / 86400), Math.floor(total / 3600) % 24, Math.floor(total / 60) % 60, total % 60];
  if (days) return `${days}d ${hours}:${pad(minutes)}:${pad(seconds)}`;
  return hours ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${minutes}:${pad(seconds)}`;
}

// A moment in the shopper's time: "3:04:05 PM" today, with the day otherwise.
export function whenText(iso) {
  const t = new Date(iso);
  const time = t.toLocaleTimeString([], { hour: "numeric", minute: "2-digit", second: "2-digit" });
  return t.toDateString() === new Date().toDateString() ? time : `${t.toLocaleDateString([], { month: "short", day: "numeric" })}, ${time}`;
}

const startsIn = (iso) => (iso ? Date.parse(iso) - serverNow() : 0);

// A countdown element: `data-before` with the time left for "{}" until `data-starts-at`, then
// `data-after` and the class "started" (the page flips without a reload).
function update(node) {
  const left = startsIn(node.dataset.startsAt);
  if (left > 0) {
    node.textContent = node.dataset.before.replace("{}", countdownText(left));
    return;
  }
  node.textContent = node.dataset.after;
  node.removeAttribute("data-starts-at");
  node.classList.add("started");
}

function countdown(startsAt, before, after, attrs) {
  const node = el("span", { ...attrs, "data-starts-at": startsAt, "data-before": before, "data-after": after });
  update(node);
  return node;
}

setInterval(() => document.querySelectorAll("[data-starts-at]").forEach(update), 250);

// What a product's card and page say of its drop: the countdown to its sale (none once sold
// out: "Sold out" says it all) and its limit per shopper.
export function dropBadges(p) {
  const badges = [];
  if (p.available_quantity > 0 && startsIn(p.sale_starts_at) > 0) {
    badges.push(countdown(p.sale_starts_at, "On sale in {}", "On sale now", { class: "drop", "data-testid": "countdown" }));
  }
  if (p.max_per_shopper != null) {
    badges.push(el("span", { class: "limit", "data-testid": "limit" }, `Limit ${p.max_per_shopper} per shopper`));
  }
  return badges;
}

const named = async (id) => {
  const p = await productOf(id).catch(() => null);
  return p ? `“${p.name}”` : `product ${id}`;
};

async function limitText(productId) {
  const p = await productOf(productId, true);
  return `Limit of ${p.max_per_shopper} per shopper reached for “${p.name}”`;
}

// A refused checkout, said for the shopper (a product not on sale yet, with a live countdown to
// its start; one over its limit per shopper); false for any other refusal.
export async function showRefusal(e) {
  if (e.code === "not_on_sale_yet") {
    const { product_id: id, sale_starts_at: at } = e.detail;
    notice([`${await named(id)} goes on sale at ${whenText(at)} (`,
      countdown(at, "{} to go", "it has started", { "data-testid": "notice-countdown" }),
      "). Your cart is kept: check out again then."]);
    return true;
  }
  if (e.code === "limit_exceeded") {
    const more = (l) => (l.available > 0 ? `: you may buy ${l.available} more` : "");
    const texts = await Promise.all((e.detail.short_lines ?? []).map(async (l) => `${await limitText(l.product_id)}${more(l)}`));
    notice(texts.length ? `${texts.join("; ")}. Your cart is kept.` : e.message);
    return true;
  }
  return false;
}

// Why an order's line was refused, for the shopper.
export async function lineReason(line) {
  return line.reason_code === "limit_exceeded" ? limitText(line.product_id) : line.reason;
}

// An order's place in line (`ahead`, each line's `remaining`), shown in its row while it is known
// and the order PENDING: "12 ahead of you" ("You're next" at 0) and the units left of each line's
// product. `null` hides it.
export async function showPlace(orderId, place) {
  const row = document.querySelector(`[data-testid=order][data-id="${orderId}"]`);
  const known = place && place.ahead != null;
  const remaining = known ? (place.lines ?? []).filter((l) => l.remaining != null) : [];
  const names = await Promise.all(remaining.map((l) => named(l.product_id)));
  const node = row && row.querySelector("[data-testid=order-place]");
  if (!node) return;
  node.hidden = !known;
  if (!known) return;
  node.replaceChildren(
    el("span", { "data-testid": "order-ahead" }, place.ahead === 0 ? "You're next" : `${place.ahead} ahead of you`),
    ...remaining.map((l, i) => el("span", { "data-testid": "line-remaining" }, ` · ${names[i]}: ${l.remaining} left`)));
}

// A datetime-local input's value (the browser's time) as RFC 3339 with the browser's offset;
// empty is null (no start).
export function startFromInput(value) {
  if (!value) return null;
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) throw new Error("The sale's start is not a valid date and time");
  const offset = -t.getTimezoneOffset();
  const zone = `${offset < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  return `${localInputValue(t)}${zone}`;
}

function localInputValue(t) {
  return `${pad(t.getFullYear(), 4)}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}T${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

const limitFromInput = (value) => (value === "" ? null : Number(value));

// The start and limit fields of the listing form (`starts`, `limit`: its inputs), as the API
// takes them.
export const dropFields = (starts, limit) => ({ sale_starts_at: startFromInput(starts.value), max_per_shopper: limitFromInput(limit.value) });

const dropSummary = (p) =>
  `${p.sale_starts_at ? `on sale from ${whenText(p.sale_starts_at)}` : "on sale now"}, ${p.max_per_shopper ? `limit ${p.max_per_shopper} per shopper` : "no limit per shopper"}`;

// A seller's editor of one product's drop: opened, it shows the start and limit as they are;
// saved, it sets both (an empty field clears it). `saved` runs after a save.
export function dropEditor(p, saved) {
  const attrs = { disabled: true, "data-testid": "edit-starts", "aria-label": `When ${p.name} goes on sale` };
  const starts = el("input", { type: "datetime-local", step: "1", max: "9999-12-31T23:59:59", ...attrs });
  const limit = el("input", { type: "number", min: "1", max: "1000000000", placeholder: "none", ...attrs, "data-testid": "edit-limit", "aria-label": `Limit of ${p.name} per shopper` });
  const save = async (event) => {
    event.preventDefault();
    const product = await api(`/products/${p.id}`, { method: "PATCH", body: dropFields(starts, limit) });
    remember(product);
    notice(`Saved: ${product.name} is ${dropSummary(product)}.`, "info");
    await saved();
  };
  const editor = el("details", { class: "drop-edit", "data-testid": "drop-edit" },
    el("summary", {}, "Drop: start and limit"),
    el("form", { class: "row", "data-testid": "drop-form", onsubmit: save },
      el("label", {}, "Starts", starts), el("label", {}, "Limit", limit),
      el("button", { type: "submit", class: "secondary", "data-testid": "save-drop" }, "Save")));
  editor.addEventListener("toggle", async () => {
    if (!editor.open) return;
    const now = await productOf(p.id, true).catch((e) => notice(e.message));
    if (!now) return;
    starts.value = now.sale_starts_at ? localInputValue(new Date(now.sale_starts_at)) : "";
    limit.value = now.max_per_shopper ?? "";
    starts.disabled = limit.disabled = false;
  });
  return editor;
}
