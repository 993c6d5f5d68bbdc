// The storefront end to end: a shopper registers, adds two products, checks out and sees the order
// CONFIRMED live; a product that sells out meanwhile makes the next order REJECTED.
// Needs API (the shop's URL) and SYSTEM_DB_URL (its database), as scripts/check-storefront.sh sets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const API = process.env.API;
const DB = process.env.SYSTEM_DB_URL;
const SHOTS = process.env.SCREENSHOTS ?? new URL("../../docs/screenshots/", import.meta.url).pathname;
const SETTLE = 60_000;

const launch = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });

const count = (page, testId, n) =>
  page.waitForFunction(([id, want]) => document.querySelectorAll(`[data-testid=${id}]`).length === want, [testId, n], { timeout: SETTLE });

const statusShown = (page, status) =>
  page.getByTestId("order-status").filter({ hasText: status }).first().waitFor({ timeout: SETTLE });

test("a shopper registers, buys two products, and sees CONFIRMED then a sold-out REJECTED", async () => {
  assert.ok(API && DB, "API and SYSTEM_DB_URL must be set");
  mkdirSync(SHOTS, { recursive: true });
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(API);
    const n = String(Date.now()).slice(-7);
    await page.getByTestId("email").fill(`shopper${n}@example.com`);
    await page.getByTestId("phone").fill(`+1555${n}`);
    await page.getByTestId("register").click();
    await page.getByTestId("who").filter({ hasText: "Signed in as" }).waitFor();
    await page.getByTestId("product").nth(2).waitFor();
    await page.screenshot({ path: `${SHOTS}/catalog-desktop.png` });

    // Paging and categories.
    await page.getByTestId("category-books").click();
    await page.getByTestId("product").first().waitFor();
    const books = await page.getByTestId("product").count();
    assert.ok(books > 0);
    await page.getByTestId("category-all").click();
    await page.getByTestId("product").nth(11).waitFor();
    await page.getByTestId("more").click();
    await page.getByTestId("product").nth(12).waitFor();

    // Two products into the cart, one changed, then checkout.
    await page.getByTestId("add").nth(0).click();
    await count(page, "cart-line", 1);
    await page.getByTestId("add").nth(1).click();
    await count(page, "cart-line", 2);
    await page.getByTestId("product-name").first().click();
    await page.getByTestId("detail-stock").waitFor();
    await page.screenshot({ path: `${SHOTS}/cart-desktop.png` });
    await page.getByTestId("checkout").click();
    await statusShown(page, "CONFIRMED");
    await count(page, "cart-line", 0);
    await page.screenshot({ path: `${SHOTS}/order-confirmed-desktop.png` });

    // A product sells out after it is in the cart: the order is REJECTED, the cart kept.
    const third = page.getByTestId("product").nth(2);
    const soldOut = await third.getAttribute("data-id");
    await third.getByTestId("add").click();
    await count(page, "cart-line", 1);
    execFileSync("psql", [DB, "-qc", `UPDATE products SET available_quantity = 0 WHERE id = ${Number(soldOut)}`]);
    await page.getByTestId("checkout").click();
    await statusShown(page, "REJECTED");
    await page.getByTestId("notice").filter({ hasText: "rejected" }).waitFor();
    await count(page, "cart-line", 1);
    await count(page, "order", 2);
    await page.screenshot({ path: `${SHOTS}/order-rejected-desktop.png` });

    // A failure is shown, not swallowed: adding beyond the per-line maximum.
    await page.getByRole("spinbutton").first().fill("500");
    await page.getByRole("spinbutton").first().dispatchEvent("change");
    await page.getByTestId("notice").filter({ hasText: "quantity" }).waitFor();
    assert.equal(await page.getByRole("spinbutton").first().inputValue(), "1", "the cart shows what it really holds");

    // Rate limiting and network failures are shown too (simulated at the browser's edge).
    await page.route("**/cart/add", (route) =>
      route.fulfill({
        status: 429,
        headers: { "retry-after": "3", "content-type": "application/json" },
        body: JSON.stringify({ error: { code: "rate_limited", message: "slow down" } }),
      }));
    await page.getByTestId("add").first().click();
    await page.getByTestId("notice").filter({ hasText: "try again in 3 seconds" }).waitFor();
    await page.unroute("**/cart/add");
    await page.route("**/cart/add", (route) => route.abort("internetdisconnected"));
    await page.getByTestId("add").first().click();
    await page.getByTestId("notice").filter({ hasText: "Network error" }).waitFor();
    await page.unroute("**/cart/add");

    // Phone-sized window.
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto(API);
    await phone.getByTestId("product").first().waitFor();
    await phone.screenshot({ path: `${SHOTS}/catalog-phone.png`, fullPage: false });
  } finally {
    await browser.close();
  }
});
