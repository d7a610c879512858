// End-to-end test of a real MedusaJS store through the dashboard, in
// headless Chromium, against `storefleet dev` with its real node. The Go test
// test/store runs it with:
//   STOREFLEET_URL  the dashboard (and API) address
//   SCREENSHOTS     directory for the screenshots kept as CI artifacts
//   CHROMIUM        the browser (default /usr/bin/chromium)
// The way a shop owner goes: create a store in the dashboard, watch it become
// Ready, open its storefront (the sample product with its price), get the
// one-time admin link, create the admin account in Medusa's own admin, log in.
import { launchChromium } from "./browser.mjs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.env.STOREFLEET_URL;
const shots = process.env.SCREENSHOTS ?? "build/screenshots";
if (!base) {
  console.error("STOREFLEET_URL is not set: run this through `go test ./test/store` (it starts storefleet dev with its real node)");
  process.exit(2);
}
await mkdir(shots, { recursive: true });

const owner = "owner@example.com";
const password = "a long store password 42";
const shop = `e2e-real-${Date.now().toString(36).slice(-5)}`;

function step(msg) {
  console.log(`[e2e-real] ${msg}`);
}

// What the admin's auth calls answered, so a login that goes nowhere says why.
const authReplies = [];
function recordAuthReplies(p) {
  p.on("response", (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith("/auth/") || u.pathname === "/admin/users/me") authReplies.push({ status: r.status(), text: `${r.request().method()} ${u.pathname} → ${r.status()}` });
  });
}

// Logs in on Medusa's login page. The page may still re-render after it first
// shows its form (it loads the store's settings and translations), which
// empties fields filled too early; a submit whose fields were emptied that way
// is filled and sent again. A login the backend refused fails at once, with
// what the page and the auth calls said.
async function logIn(admin) {
  await admin.waitForURL((u) => u.pathname.endsWith("/login"), { timeout: 60_000 });
  const email = admin.locator("input[name=email]");
  const pass = admin.locator("input[name=password]");
  for (let attempt = 1; ; attempt++) {
    await email.fill(owner);
    await pass.fill(password);
    const sent = authReplies.length;
    await admin.getByRole("button", { name: "Continue with Email" }).click();
    try {
      await admin.waitForURL((u) => !u.pathname.endsWith("/login"), { timeout: 20_000 });
      return;
    } catch (err) {
      const answered = authReplies.slice(sent);
      const replies = answered.map((r) => r.text);
      if (answered.length > 0 && answered.every((r) => r.status < 400)) {
        // Accepted but slow to move on (a loaded machine): give it the time a person would.
        console.log(`[e2e-real] login accepted (${replies.join(", ")}), still on ${admin.url()}: waiting`);
        await admin.waitForURL((u) => !u.pathname.endsWith("/login"), { timeout: 60_000 });
        return;
      }
      const emptied = (await email.inputValue().catch(() => "")) === "" || (await pass.inputValue().catch(() => "")) === "";
      const said = (await admin.locator("form, [role=alert], [data-sonner-toast]").allInnerTexts().catch(() => [])).join(" | ").replace(/\s+/g, " ");
      console.log(`[e2e-real] login attempt ${attempt} stayed on ${admin.url()}: fields ${emptied ? "emptied" : "kept"}; auth calls: ${replies.join(", ") || "none"}; page: ${said}`);
      if (replies.length > 0 || !emptied || attempt === 3) {
        throw new Error(`the admin login at ${admin.url()} went nowhere (auth calls: ${replies.join(", ") || "none"}; page: ${said})`);
      }
    }
  }
}

const browser = await launchChromium([
  // <store>.localhost is the ingress on loopback; never the host's proxy.
  "--no-proxy-server",
  "--host-resolver-rules=MAP *.localhost 127.0.0.1",
]);
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const problems = [];
const page = await context.newPage();
page.on("pageerror", (e) => problems.push(`dashboard: page error: ${e.message}`));

try {
  step(`open the dashboard as ${owner}`);
  await page.goto(base);
  await page.getByRole("heading", { name: "Your stores" }).waitFor();
  const switcher = page.getByLabel("User (dev)");
  await switcher.fill(owner);
  await page.getByRole("button", { name: "Switch" }).click();
  await page.locator("[data-testid=empty-state], table.stores").first().waitFor();

  step(`create ${shop}`);
  await page.getByLabel("Name", { exact: true }).fill(shop);
  await page.getByLabel("MedusaJS").check();
  await page.getByRole("button", { name: "Create store" }).click();
  await page.waitForURL(`**/stores/${shop}`);
  const started = Date.now();
  await page.locator(".panel-head .badge[data-phase=Ready]").waitFor({ timeout: 10 * 60_000 });
  step(`Ready after ${Math.round((Date.now() - started) / 1000)} s`);
  assert.equal(await page.locator(".panel-head [data-runtime]").count(), 0, "a store on the real node is not badged simulated");
  await page.screenshot({ path: join(shots, "real-store-ready.png"), fullPage: true });

  step("click Storefront: the sample product with its price");
  const [storefront] = await Promise.all([context.waitForEvent("page"), page.getByRole("link", { name: "Storefront" }).first().click()]);
  for (let i = 0; ; i++) {
    // The storefront may still be warming up its first product list.
    if ((await storefront.getByText("Sample T-Shirt").count()) > 0) break;
    if (i === 60) throw new Error(`the storefront at ${storefront.url()} does not show the sample product`);
    await storefront.waitForTimeout(2000);
    await storefront.reload();
  }
  assert.match(await storefront.content(), /€\s?25[.,]00|25[.,]00\s?€/, "the product's price is on the page");
  await storefront.screenshot({ path: join(shots, "real-storefront.png"), fullPage: true });

  step("Admin access: the one-time link");
  await page.getByLabel(/Admin e-mail/).fill(owner);
  await page.getByRole("button", { name: "Get admin link" }).click();
  const [admin] = await Promise.all([context.waitForEvent("page"), page.getByRole("link", { name: "Open the admin" }).click()]);
  recordAuthReplies(admin);
  await page.screenshot({ path: join(shots, "real-store-admin-link.png"), fullPage: true });

  step("Medusa's invite page: create the admin account");
  await admin.locator("input[name=first_name]").fill("Store");
  await admin.locator("input[name=last_name]").fill("Owner");
  await admin.locator("input[name=password]").fill(password);
  await admin.locator("input[name=repeat_password]").fill(password);
  await admin.getByRole("button", { name: "Create account" }).click();
  await admin.getByText("Your account has been registered").waitFor({ timeout: 60_000 });
  await admin.getByRole("link", { name: "Start Medusa Admin" }).click();

  step("log in to the admin over the store's own URL");
  await logIn(admin);
  await admin.getByRole("link", { name: "Products" }).first().waitFor({ timeout: 60_000 });
  await admin.getByRole("link", { name: "Products" }).first().click();
  await admin.getByText("Sample T-Shirt").first().waitFor({ timeout: 60_000 });
  await admin.screenshot({ path: join(shots, "real-admin.png"), fullPage: true });

  step(`delete ${shop}`);
  await page.bringToFront();
  await page.getByRole("button", { name: "Delete store" }).click();
  await page.getByRole("dialog", { name: `Delete ${shop}?` }).getByRole("button", { name: `Delete ${shop}` }).click();
  await page.waitForURL((u) => !u.pathname.includes(shop), { timeout: 60_000 });

  assert.deepEqual(problems, [], "no page errors in the dashboard");
  step("passed");
  await browser.close();
  process.exit(0);
} catch (err) {
  console.error(`[e2e-real] FAILED: ${err.message}`);
  for (const [i, p] of context.pages().entries()) {
    await p.screenshot({ path: join(shots, `real-failure-${i}.png`), fullPage: true }).catch(() => {});
    console.error(`[e2e-real] page ${i}: ${p.url()}`);
  }
  await browser.close();
  process.exit(1);
}
