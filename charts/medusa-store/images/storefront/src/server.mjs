// storefleet storefront: a small server-rendered shop on the Medusa store API
// (@medusajs/js-sdk). Everything it needs comes at run time: the backend's
// URL from MEDUSA_BACKEND_URL, the publishable key and region from the
// backend's GET /storefleet/storefront-config.
import http from "node:http"
import fs from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { readEnv, Store, isKeyError } from "./config.mjs"
import { layout, homePage, productPage, cartPage, messagePage } from "./html.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))
const CSS = fs.readFileSync(path.join(here, "..", "public", "style.css"))
const CART_COOKIE = "sf_cart"
const CART_ID = /^cart_[0-9A-Za-z]{10,40}$/
const PAGE_SIZE = 24
const MAX_BODY = 16 * 1024
const MAX_QTY = 99

const LIST_FIELDS = "id,title,subtitle,handle,thumbnail,*variants.calculated_price"
const PRODUCT_FIELDS =
  "id,title,subtitle,handle,description,thumbnail,*images,*options,*options.values,*variants,*variants.options,*variants.calculated_price,+variants.inventory_quantity"
const CART_FIELDS =
  "id,currency_code,region_id,total,subtotal,item_subtotal,tax_total,shipping_total,discount_total,completed_at," +
  "*items,items.id,items.title,items.quantity,items.unit_price,items.total,items.subtotal,items.thumbnail," +
  "items.product_title,items.product_handle,items.variant_title,items.created_at"

export function createServer(env, { log = console } = {}) {
  const store = new Store(env, { log })
  let readyUntil = 0

  // Calls fn with the current config; refreshes the config once when the
  // backend rejects the publishable key.
  async function withStore(fn) {
    const cfg = await store.get()
    try {
      return await fn(cfg)
    } catch (err) {
      if (!isKeyError(err)) throw err
      log.warn(`storefront: publishable key rejected (${err.message}); reloading the store config`)
      return fn(await store.get({ force: true }))
    }
  }

  async function ready() {
    if (Date.now() < readyUntil) return true
    await withStore(({ sdk, region }) => sdk.store.product.list({ limit: 1, region_id: region.id, fields: "id" }))
    readyUntil = Date.now() + 5000
    return true
  }

  function cartIdOf(req) {
    const m = /(?:^|;\s*)sf_cart=([^;]+)/.exec(req.headers.cookie || "")
    return m && CART_ID.test(m[1]) ? m[1] : null
  }

  function secure(req) {
    if (env.cookieSecure === "true") return true
    if (env.cookieSecure === "false") return false
    return String(req.headers["x-forwarded-proto"] || "").split(",")[0].trim() === "https"
  }

  function cartCookie(req, id) {
    const attrs = ["Path=/", "HttpOnly", "SameSite=Lax"]
    if (secure(req)) attrs.push("Secure")
    return id ? `${CART_COOKIE}=${id}; Max-Age=2592000; ${attrs.join("; ")}` : `${CART_COOKIE}=; Max-Age=0; ${attrs.join("; ")}`
  }

  async function loadCart(sdk, id, fields = CART_FIELDS) {
    if (!id) return null
    try {
      const { cart } = await sdk.store.cart.retrieve(id, { fields })
      return cart.completed_at ? null : cart
    } catch (err) {
      if (err?.status === 404) return null
      throw err
    }
  }

  async function page(req, res, { status = 200, title, body, cart, cookies = [] }) {
    const cfg = await store.get().catch(() => null)
    const count = (cart?.items ?? []).reduce((n, i) => n + Number(i.quantity || 0), 0)
    send(res, status, layout({ title, storeName: cfg?.storeName || env.storeName || "Store", cartCount: count, body }), {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      ...(cookies.length ? { "set-cookie": cookies } : {}),
    })
  }

  async function headerCart(sdk, req) {
    return loadCart(sdk, cartIdOf(req), "id,completed_at,*items,items.quantity").catch(() => null)
  }

  const routes = [
    ["GET", /^\/healthz$/, async (req, res) => send(res, 200, "ok\n", { "content-type": "text/plain" })],
    [
      "GET",
      /^\/readyz$/,
      async (req, res) => {
        try {
          await ready()
          send(res, 200, "ready\n", { "content-type": "text/plain" })
        } catch (err) {
          send(res, 503, `not ready: ${err.message}\n`, { "content-type": "text/plain" })
        }
      },
    ],
    [
      "GET",
      /^\/assets\/style\.css$/,
      async (req, res) => send(res, 200, CSS, { "content-type": "text/css; charset=utf-8", "cache-control": "public, max-age=3600" }),
    ],
    [
      "GET",
      /^\/$/,
      async (req, res, m, url) => {
        const offset = Math.max(0, Math.min(10_000, parseInt(url.searchParams.get("offset") || "0", 10) || 0))
        const { data, cart } = await withStore(async ({ sdk, region }) => ({
          data: await sdk.store.product.list({ region_id: region.id, limit: PAGE_SIZE, offset, fields: LIST_FIELDS, order: "-created_at" }),
          cart: await headerCart(sdk, req),
        }))
        const { region } = await store.get()
        await page(req, res, {
          body: homePage({ products: data.products, count: data.count, offset, limit: PAGE_SIZE, region, locale: env.locale }),
          cart,
        })
      },
    ],
    [
      "GET",
      /^\/products\/([^/]+)$/,
      async (req, res, m) => {
        const handle = decodeURIComponent(m[1])
        const { product, cart } = await findProduct(req, handle)
        if (!product) return notFound(req, res)
        await page(req, res, { title: product.title, body: productPage({ product, locale: env.locale }), cart })
      },
    ],
    [
      "GET",
      /^\/cart$/,
      async (req, res) => {
        const cart = await withStore(({ sdk }) => loadCart(sdk, cartIdOf(req)))
        const cookies = !cart && cartIdOf(req) ? [cartCookie(req, null)] : []
        await page(req, res, { title: "Cart", body: cartPage({ cart, locale: env.locale }), cart, cookies })
      },
    ],
    [
      "POST",
      /^\/cart\/items$/,
      async (req, res) => {
        const form = await readForm(req)
        const variantId = form.get("variant_id") || ""
        const quantity = clampQty(form.get("quantity"), 1)
        const handle = form.get("handle") || ""
        if (!/^variant_[0-9A-Za-z]+$/.test(variantId) || quantity < 1) {
          return send(res, 400, "bad request\n", { "content-type": "text/plain" })
        }
        try {
          const cartId = await withStore(async ({ sdk, region }) => {
            let cart = await loadCart(sdk, cartIdOf(req), "id,region_id,completed_at")
            if (!cart || cart.region_id !== region.id) {
              ;({ cart } = await sdk.store.cart.create({ region_id: region.id }, { fields: "id" }))
            }
            await sdk.store.cart.createLineItem(cart.id, { variant_id: variantId, quantity }, { fields: "id" })
            return cart.id
          })
          redirect(res, "/cart", [cartCookie(req, cartId)])
        } catch (err) {
          if (!(err?.status >= 400 && err?.status < 500)) throw err
          const { product, cart } = await findProduct(req, handle)
          if (!product) return notFound(req, res)
          await page(req, res, {
            status: 409,
            title: product.title,
            body: productPage({ product, locale: env.locale, error: `This item could not be added to your cart: ${err.message}` }),
            cart,
          })
        }
      },
    ],
    [
      "POST",
      /^\/cart\/items\/([^/]+?)(\/delete)?$/,
      async (req, res, m) => {
        const lineId = decodeURIComponent(m[1])
        const form = await readForm(req)
        const cartId = cartIdOf(req)
        if (!cartId || !/^cali_[0-9A-Za-z]+$/.test(lineId)) return redirect(res, "/cart")
        const quantity = m[2] ? 0 : clampQty(form.get("quantity"), 0)
        try {
          await withStore(({ sdk }) =>
            quantity === 0
              ? sdk.store.cart.deleteLineItem(cartId, lineId)
              : sdk.store.cart.updateLineItem(cartId, lineId, { quantity }, { fields: "id" })
          )
          redirect(res, "/cart")
        } catch (err) {
          if (!(err?.status >= 400 && err?.status < 500)) throw err
          const cart = await withStore(({ sdk }) => loadCart(sdk, cartId))
          await page(req, res, {
            status: 409,
            title: "Cart",
            body: cartPage({ cart, locale: env.locale, error: `Your cart could not be updated: ${err.message}` }),
            cart,
          })
        }
      },
    ],
  ]

  async function findProduct(req, handle) {
    return withStore(async ({ sdk, region }) => {
      const { products } = await sdk.store.product.list({ handle, region_id: region.id, limit: 1, fields: PRODUCT_FIELDS })
      return { product: products[0] ?? null, cart: await headerCart(sdk, req) }
    })
  }

  async function notFound(req, res) {
    await page(req, res, {
      status: 404,
      title: "Not found",
      body: messagePage({ heading: "Page not found", text: "The page you are looking for does not exist." }),
    })
  }

  const server = http.createServer(async (req, res) => {
    const started = Date.now()
    const url = new URL(req.url || "/", "http://storefront.invalid")
    res.on("finish", () => {
      if (!/^\/(healthz|readyz|assets\/)/.test(url.pathname)) {
        log.info(`${req.method} ${url.pathname} ${res.statusCode} ${Date.now() - started}ms`)
      }
    })
    setSecurityHeaders(res)
    try {
      for (const [method, re, handler] of routes) {
        const m = re.exec(url.pathname)
        if (!m) continue
        if (req.method !== method && !(method === "GET" && req.method === "HEAD")) continue
        return await handler(req, res, m, url)
      }
      if (routes.some(([, re]) => re.test(url.pathname))) {
        return send(res, 405, "method not allowed\n", { "content-type": "text/plain", allow: "GET, POST" })
      }
      await notFound(req, res)
    } catch (err) {
      if (err?.status === 413) return send(res, 413, "request body too large\n", { "content-type": "text/plain" })
      log.error(`storefront: ${req.method} ${url.pathname}: ${err?.stack || err}`)
      if (res.headersSent) return res.destroy()
      await page(req, res, {
        status: 503,
        title: "Unavailable",
        body: messagePage({ heading: "The shop is unavailable", text: "Please try again in a moment." }),
      }).catch(() => res.destroy())
    }
  })
  server.headersTimeout = 20_000
  server.requestTimeout = 30_000
  server.keepAliveTimeout = 5_000
  return server
}

function setSecurityHeaders(res) {
  res.setHeader("x-content-type-options", "nosniff")
  res.setHeader("referrer-policy", "same-origin")
  res.setHeader("x-frame-options", "DENY")
  res.setHeader(
    "content-security-policy",
    "default-src 'self'; img-src 'self' https: http: data:; style-src 'self'; script-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
  )
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, headers)
  res.end(res.req?.method === "HEAD" ? undefined : body)
}

function redirect(res, location, cookies = []) {
  res.writeHead(303, { location, "cache-control": "no-store", ...(cookies.length ? { "set-cookie": cookies } : {}) })
  res.end()
}

function clampQty(value, min) {
  const n = parseInt(String(value ?? ""), 10)
  if (!Number.isFinite(n)) return min
  return Math.max(min, Math.min(MAX_QTY, n))
}

async function readForm(req) {
  let size = 0
  const chunks = []
  for await (const chunk of req) {
    size += chunk.length
    if (size > MAX_BODY) throw Object.assign(new Error("request body too large"), { status: 413 })
    chunks.push(chunk)
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"))
}

// Entry point (not when imported by tests).
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const env = readEnv()
  // Every backend call gets a timeout, the js-sdk's included.
  const plainFetch = globalThis.fetch
  globalThis.fetch = (input, init = {}) => plainFetch(input, { signal: AbortSignal.timeout(env.timeoutMs), ...init })

  const server = createServer(env)
  server.listen(env.port, env.host, () => {
    console.info(`storefront: listening on ${env.host}:${env.port}, backend ${env.backendUrl}`)
  })
  let stopping = false
  const stop = (signal) => {
    if (stopping) return
    stopping = true
    console.info(`storefront: ${signal}, closing`)
    server.close(() => process.exit(0))
    server.closeIdleConnections()
    setTimeout(() => process.exit(0), 10_000).unref()
  }
  process.on("SIGTERM", () => stop("SIGTERM"))
  process.on("SIGINT", () => stop("SIGINT"))
}
