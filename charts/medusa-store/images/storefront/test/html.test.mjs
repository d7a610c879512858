import { test } from "node:test"
import assert from "node:assert/strict"
import { esc, safeUrl, formatPrice, priceRange, inStock, productPage } from "../src/html.mjs"
import { readEnv, isKeyError } from "../src/config.mjs"

test("esc escapes markup", () => {
  assert.equal(esc(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
  assert.equal(esc(null), "")
})

test("safeUrl keeps http(s) and site paths only", () => {
  assert.equal(safeUrl("https://cdn/x.png"), "https://cdn/x.png")
  assert.equal(safeUrl("/static/x.png"), "/static/x.png")
  assert.equal(safeUrl("javascript:alert(1)"), "")
  assert.equal(safeUrl("//evil/x.png"), "")
})

test("formatPrice uses major units", () => {
  assert.equal(formatPrice(25, "eur", "en-US"), "€25.00")
  assert.equal(formatPrice(1234.5, "usd", "en-US"), "$1,234.50")
  assert.equal(formatPrice(null, "eur"), "")
})

test("priceRange finds the cheapest variant", () => {
  const r = priceRange({
    variants: [
      { calculated_price: { calculated_amount: 30, original_amount: 30, currency_code: "eur" } },
      { calculated_price: { calculated_amount: 20, original_amount: 25, currency_code: "eur" } },
    ],
  })
  assert.deepEqual(r, { amount: 20, original: 25, currency: "eur", varies: true })
  assert.equal(priceRange({ variants: [{}] }), null)
})

test("inStock honours inventory management and backorders", () => {
  assert.equal(inStock({ manage_inventory: false }), true)
  assert.equal(inStock({ manage_inventory: true, inventory_quantity: 0 }), false)
  assert.equal(inStock({ manage_inventory: true, inventory_quantity: 0, allow_backorder: true }), true)
})

test("productPage escapes backend values", () => {
  const html = productPage({
    product: { title: "<script>x</script>", handle: "h", variants: [], description: "a\nb" },
    locale: "en-US",
  })
  assert.ok(!html.includes("<script>"))
  assert.ok(html.includes("&lt;script&gt;"))
})

test("readEnv defaults and validation", () => {
  const e = readEnv({})
  assert.equal(e.port, 8000)
  assert.equal(e.backendUrl, "http://localhost:9000")
  assert.equal(readEnv({ MEDUSA_BACKEND_URL: "http://b:9000/" }).backendUrl, "http://b:9000")
  assert.throws(() => readEnv({ PORT: "x" }))
})

test("isKeyError recognises a rejected publishable key", () => {
  assert.equal(isKeyError({ status: 400, message: "Publishable API key required in the request header" }), true)
  assert.equal(isKeyError({ status: 400, message: "Invalid quantity" }), false)
})
