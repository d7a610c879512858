// End-to-end test of the dashboard in headless Chromium (Debian's chromium,
// driven by playwright-core; no browser download), against a running
// `storefleet dev`. The Go test test/dashboard starts dev and runs this with:
//   STOREFLEET_URL  the dashboard (and API) address
//   SCREENSHOTS     directory for the screenshots kept as CI artifacts
//   CHROMIUM        the browser (default /usr/bin/chromium)
//   INTENT          "git" when dev runs with --intent git: the stores repo flow
// Exit status 0 only when every step passed; each failure says what the user
// would have seen.
import { launchChromium } from "./browser.mjs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.env.STOREFLEET_URL;
const shots = process.env.SCREENSHOTS ?? "build/screenshots";
if (!base) {
  console.error("STOREFLEET_URL is not set: run this through `go test ./test/dashboard` (it starts storefleet dev)");
  process.exit(2);
}
await mkdir(shots, { recursive: true });

const suffix = Date.now().toString(36).slice(-5);
const shop = `e2e-shop-${suffix}`;
const woo = `e2e-woo-${suffix}`;
const provisionTimeout = 120_000;

function step(msg) {
  console.log(`[e2e] ${msg}`);
}

const browser = await launchChromium();

const problems = [];
async function newUserPage(user, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("console", (m) => {
    // Chromium logs every 4xx answer as "Failed to load resource"; the test
    // provokes 404, 409 and 422 on purpose and checks what the page shows
    // for them. Anything else (a 5xx, an error the app logs) is a failure.
    if (m.type() !== "error") return;
    if (/^Failed to load resource: the server responded with a status of (404|409|422) /.test(m.text())) return;
    problems.push(`${user}: console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${user}: page error: ${e.message}`));
  await page.goto(base);
  await page.getByRole("heading", { name: "Your stores" }).waitFor();
  const switcher = page.getByLabel("User (dev)");
  if ((await switcher.inputValue()) !== user) {
    await switcher.fill(user);
    await page.getByRole("button", { name: "Switch" }).click();
  }
  await page.locator("[data-testid=empty-state], table.stores").first().waitFor();
  return page;
}

async function createStore(page, name, engine = "MedusaJS") {
  await page.getByRole("link", { name: "storefleet home" }).click();
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel(engine).check();
  await page.getByRole("button", { name: "Create store" }).click();
  await page.waitForURL(`**/stores/${name}`);
}

// watchPipeline polls the pipeline's steps until Ready (without reloading),
// returning every step=state it saw.
async function watchPipeline(page) {
  const seen = new Set();
  const deadline = Date.now() + provisionTimeout;
  for (;;) {
    const states = await page
      .locator(".pipeline .step")
      .evaluateAll((els) => els.map((e) => `${e.dataset.step}=${e.dataset.state}`));
    states.forEach((s) => seen.add(s));
    if (states.includes("ready=done")) return seen;
    if (states.some((s) => s.endsWith("=failed"))) throw new Error(`a step failed: ${states.join(", ")}`);
    if (Date.now() > deadline) throw new Error(`not Ready within ${provisionTimeout / 1000} s: ${states.join(", ")}`);
    await page.waitForTimeout(100);
  }
}

// gitFlow: with the Git intent a create is a commit to the stores repo; the
// store page shows Committed → Synced before the cluster's steps.
async function gitFlow() {
  const user = `gitter-${suffix}`;
  const page = await newUserPage(user);
  const name = `git-shop-${suffix}`;
  step(`create ${name} through the stores repo`);
  await createStore(page, name);
  const seen = await watchPipeline(page);
  step(`steps seen: ${[...seen].join(", ")}`);
  for (const want of ["committed=done", "synced=done", "ready=done"]) {
    assert.ok(seen.has(want), `the pipeline never showed ${want}: ${[...seen].join(", ")}`);
  }
  assert.match(await page.locator(".summary").textContent(), /via git \(commit [0-9a-f]{8}\)/);
  await page.getByTestId("activity").locator("li[data-event=READY]").waitFor();
  await page.screenshot({ path: join(shots, "store-git.png"), fullPage: true });
  step(`delete ${name}: the removal is committed, then the store disappears`);
  await page.getByRole("button", { name: "Delete store" }).click();
  await page.getByRole("dialog", { name: `Delete ${name}?` }).getByRole("button", { name: `Delete ${name}` }).click();
  await page.waitForURL(`${base}/`);
  await page.locator(`tr[data-store=${name}]`).waitFor({ state: "detached", timeout: provisionTimeout });
  await page.getByTestId("empty-state").waitFor();
}

let exitCode = 0;
try {
  if (process.env.INTENT === "git") {
    await gitFlow();
    assert.deepEqual(problems, [], "no console errors");
    step("passed");
    await browser.close();
    process.exit(0);
  }
  const alice = await newUserPage("alice");
  const aliceUser = `alice-${suffix}`;
  await alice.getByLabel("User (dev)").fill(aliceUser);
  await alice.getByRole("button", { name: "Switch" }).click();
  step(`empty state for a new user (${aliceUser})`);
  await alice.getByTestId("empty-state").waitFor();
  await alice.screenshot({ path: join(shots, "list-empty.png"), fullPage: true });

  step("invalid name: checked as typed, then the API's field error on submit");
  const nameInput = alice.getByLabel("Name", { exact: true });
  await nameInput.fill("Shop_1");
  assert.equal(await alice.getByTestId("name-error").textContent(), "Use lowercase letters only.");
  await nameInput.fill("www");
  assert.match(await alice.getByTestId("name-error").textContent(), /reserved/);
  await alice.getByRole("button", { name: "Create store" }).click();
  await alice.getByTestId("name-error").filter({ hasText: "name is reserved" }).waitFor();
  assert.equal(await alice.getByTestId("name-error").getAttribute("data-source"), "api", "the field shows the API's answer");
  assert.equal(await nameInput.getAttribute("aria-invalid"), "true");
  assert.ok(alice.url().endsWith("/"), "an invalid store does not navigate");

  step(`create ${shop} and watch the pipeline advance without reloading`);
  let navigations = 0;
  alice.on("framenavigated", (f) => {
    if (f === alice.mainFrame()) navigations++;
  });
  await createStore(alice, shop);
  const navigationsAfterCreate = navigations;
  const seen = await watchPipeline(alice);
  assert.equal(navigations, navigationsAfterCreate, "the page did not reload while provisioning");
  const progressed = [...seen].filter((s) => s.endsWith("=active") || s.endsWith("=waiting"));
  assert.ok(progressed.length > 0, `saw the pipeline only finished, never in progress: ${[...seen].join(", ")}`);
  step(`steps seen in progress: ${progressed.join(", ")}`);
  await alice.locator(".panel-head .badge[data-phase=Ready]").waitFor();
  await alice.getByRole("link", { name: "Storefront" }).waitFor();

  step("the activity log shows the transitions");
  const log = alice.getByTestId("activity");
  for (const ev of ["NAMESPACE_READY", "HELM_INSTALLED", "DATABASE_READY", "BACKEND_READY", "STOREFRONT_READY", "READY"]) {
    await log.locator(`li[data-event=${ev}]`).waitFor({ timeout: 10_000 });
  }
  await alice.getByRole("cell", { name: "HelmInstalled" }).or(alice.getByRole("rowheader", { name: "HelmInstalled" })).first().waitFor();
  await alice.screenshot({ path: join(shots, "store-ready.png"), fullPage: true });

  step(`WooCommerce: ${woo} reads Coming soon`);
  await createStore(alice, woo, "WooCommerce");
  await alice.locator(".panel-head .badge[data-phase=ComingSoon]").filter({ hasText: "Coming soon" }).waitFor();
  await alice.getByRole("link", { name: "storefleet home" }).click();
  await alice.locator(`tr[data-store=${woo}] .badge`).filter({ hasText: "Coming soon" }).waitFor();
  await alice.locator(`tr[data-store=${shop}] .badge[data-phase=Ready]`).waitFor();
  await alice.screenshot({ path: join(shots, "list.png"), fullPage: true });

  step("user B does not see user A's stores, and cannot take the name");
  const bob = await newUserPage(`bob-${suffix}`);
  await bob.getByTestId("empty-state").waitFor();
  assert.equal(await bob.locator(`tr[data-store=${shop}]`).count(), 0);
  await bob.goto(`${base}/stores/${shop}`);
  await bob.getByText("does not exist (any more), or it is not yours").waitFor();
  await bob.getByRole("link", { name: "storefleet home" }).click();
  await bob.getByLabel("Name", { exact: true }).fill(shop);
  await bob.getByRole("button", { name: "Create store" }).click();
  await bob.getByTestId("name-error").filter({ hasText: /taken|exists|another user/i }).waitFor();

  step("phone width: the store page fits without horizontal scrolling");
  const phone = await newUserPage(aliceUser, { width: 390, height: 844 });
  await phone.goto(`${base}/stores/${shop}`);
  await phone.locator(".panel-head .badge[data-phase=Ready]").waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than a phone`);
  await phone.screenshot({ path: join(shots, "store-phone.png"), fullPage: true });

  step("keyboard: the create form is reachable and usable by Tab");
  await alice.getByRole("link", { name: "storefleet home" }).focus();
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await alice.keyboard.press("Tab");
    reached = await alice.evaluate(() => document.activeElement?.id === "store-name");
  }
  assert.ok(reached, "Tab reaches the store name field");

  step(`delete ${shop} (with confirmation) and ${woo}; they disappear from the list`);
  for (const name of [shop, woo]) {
    await alice.goto(`${base}/stores/${name}`);
    await alice.getByRole("button", { name: "Delete store" }).click();
    const dialog = alice.getByRole("dialog", { name: `Delete ${name}?` });
    await dialog.waitFor();
    await dialog.getByRole("button", { name: `Delete ${name}` }).click();
    await alice.waitForURL(`${base}/`);
  }
  for (const name of [shop, woo]) {
    await alice.locator(`tr[data-store=${name}]`).waitFor({ state: "detached", timeout: provisionTimeout });
  }
  await alice.getByTestId("empty-state").waitFor();

  assert.deepEqual(problems, [], "no console errors");
  step("passed");
} catch (err) {
  exitCode = 1;
  console.error(`[e2e] FAILED: ${err?.stack ?? err}`);
  if (problems.length) console.error(`[e2e] browser problems:\n  ${problems.join("\n  ")}`);
  for (const ctx of browser.contexts()) {
    for (const [i, p] of ctx.pages().entries()) {
      await p.screenshot({ path: join(shots, `failure-${browser.contexts().indexOf(ctx)}-${i}.png`), fullPage: true }).catch(() => {});
    }
  }
} finally {
  await browser.close();
}
process.exit(exitCode);
