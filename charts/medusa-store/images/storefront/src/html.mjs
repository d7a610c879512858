// HTML of the storefront's pages. Every value from the backend or the request
// goes through esc() (or attr()); nothing else builds markup.

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }

export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ESC[c])
}

// safeUrl keeps http(s) and site-relative URLs (product images), nothing else.
export function safeUrl(value) {
  const s = String(value ?? "")
  return /^(https?:\/\/|\/(?!\/))/i.test(s) ? s : ""
}

const formatters = new Map()

// formatPrice formats a Medusa v2 amount (major units: 25 = 25.00) in its currency.
export function formatPrice(amount, currency, locale = "en-US") {
  if (amount === null || amount === undefined || !currency) return ""
  const key = `${locale}:${currency}`
  let f = formatters.get(key)
  if (!f) {
    try {
      f = new Intl.NumberFormat(locale, { style: "currency", currency: currency.toUpperCase() })
    } catch {
      f = { format: (n) => `${Number(n).toFixed(2)} ${currency.toUpperCase()}` }
    }
    formatters.set(key, f)
  }
  return f.format(Number(amount))
}

// priceRange returns the lowest calculated price of a product's variants and
// whether the variants differ in price.
export function priceRange(product) {
  const prices = (product.variants ?? [])
    .map((v) => v.calculated_price)
    .filter((p) => p && p.calculated_amount !== null && p.calculated_amount !== undefined)
  if (!prices.length) return null
  const amounts = prices.map((p) => Number(p.calculated_amount))
  const min = Math.min(...amounts)
  const cheapest = prices[amounts.indexOf(min)]
  return {
    amount: min,
    original: Number(cheapest.original_amount ?? min),
    currency: cheapest.currency_code,
    varies: amounts.some((a) => a !== min),
  }
}

export function inStock(variant) {
  if (!variant.manage_inventory || variant.allow_backorder) return true
  return Number(variant.inventory_quantity ?? 0) > 0
}

function priceTag(range, locale) {
  if (!range) return `<span class="price muted">Price unavailable</span>`
  const now = formatPrice(range.amount, range.currency, locale)
  const was = range.original > range.amount ? ` <s class="was">${esc(formatPrice(range.original, range.currency, locale))}</s>` : ""
  return `<span class="price">${range.varies ? "From " : ""}${esc(now)}</span>${was}`
}

function image(url, alt, cls) {
  const src = safeUrl(url)
  if (!src) {
    return `<div class="${cls} placeholder" role="img" aria-label="${esc(alt)}"><span>${esc((alt || "?").slice(0, 1).toUpperCase())}</span></div>`
  }
  return `<img class="${cls}" src="${esc(src)}" alt="${esc(alt)}" loading="lazy">`
}

export function layout({ title, storeName, cartCount = 0, body, notice = "" }) {
  const count = cartCount > 0 ? `<span class="badge" aria-label="${cartCount} items">${cartCount}</span>` : ""
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title ? `${title} · ${storeName}` : storeName)}</title>
<link rel="stylesheet" href="/assets/style.css">
<link rel="icon" href="data:,">
</head>
<body>
<header class="site-header">
  <div class="wrap bar">
    <a class="brand" href="/">${esc(storeName)}</a>
    <nav>
      <a href="/">Shop</a>
      <a class="cart-link" href="/cart">Cart ${count}</a>
    </nav>
  </div>
</header>
${notice ? `<div class="wrap"><p class="notice">${esc(notice)}</p></div>` : ""}
<main class="wrap">
${body}
</main>
<footer class="site-footer">
  <div class="wrap">
    <span>© ${new Date().getFullYear()} ${esc(storeName)}</span>
    <span class="muted">Powered by Medusa</span>
  </div>
</footer>
</body>
</html>`
}

export function homePage({ products, count, offset, limit, region, locale }) {
  const cards = products
    .map(
      (p) => `
  <li class="card">
    <a href="/products/${encodeURIComponent(p.handle)}">
      ${image(p.thumbnail, p.title, "card-img")}
      <div class="card-body">
        <h2 class="card-title">${esc(p.title)}</h2>
        ${p.subtitle ? `<p class="card-sub muted">${esc(p.subtitle)}</p>` : ""}
        <p>${priceTag(priceRange(p), locale)}</p>
      </div>
    </a>
  </li>`
    )
    .join("")
  const pager = []
  if (offset > 0) pager.push(`<a class="button ghost" href="/?offset=${Math.max(0, offset - limit)}">← Previous</a>`)
  if (offset + limit < count) pager.push(`<a class="button ghost" href="/?offset=${offset + limit}">Next →</a>`)
  return `
<section class="hero">
  <h1>Shop all products</h1>
  <p class="muted">Prices in ${esc(region.currency_code.toUpperCase())}${region.name ? ` for ${esc(region.name)}` : ""}.</p>
</section>
${
  products.length
    ? `<ul class="grid">${cards}</ul>`
    : `<div class="empty"><p>No products yet.</p><p class="muted">Products published in the admin appear here.</p></div>`
}
${pager.length ? `<div class="pager">${pager.join("")}</div>` : ""}`
}

export function productPage({ product, locale, error = "" }) {
  const variants = product.variants ?? []
  const images = (product.images ?? []).map((i) => i.url).filter((u) => safeUrl(u))
  const main = images[0] || product.thumbnail
  const options = variants
    .map((v) => {
      const p = v.calculated_price
      const price = p ? formatPrice(p.calculated_amount, p.currency_code, locale) : "unavailable"
      const available = inStock(v) && p
      return `<option value="${esc(v.id)}"${available ? "" : " disabled"}>${esc(v.title)} — ${esc(price)}${available ? "" : " (sold out)"}</option>`
    })
    .join("")
  const anyAvailable = variants.some((v) => inStock(v) && v.calculated_price)
  const thumbs =
    images.length > 1
      ? `<div class="thumbs">${images.slice(1, 5).map((u) => image(u, product.title, "thumb")).join("")}</div>`
      : ""
  return `
<nav class="crumbs"><a href="/">Shop</a> <span aria-hidden="true">/</span> <span>${esc(product.title)}</span></nav>
<article class="product">
  <div class="gallery">
    ${image(main, product.title, "product-img")}
    ${thumbs}
  </div>
  <div class="details">
    <h1>${esc(product.title)}</h1>
    ${product.subtitle ? `<p class="muted lead">${esc(product.subtitle)}</p>` : ""}
    <p class="big">${priceTag(priceRange(product), locale)}</p>
    ${error ? `<p class="error" role="alert">${esc(error)}</p>` : ""}
    ${
      variants.length
        ? `<form class="buy" method="post" action="/cart/items">
      <input type="hidden" name="handle" value="${esc(product.handle)}">
      <label>${esc(variants.length > 1 ? (product.options ?? []).map((o) => o.title).join(" / ") || "Variant" : "Variant")}
        <select name="variant_id" required>${options}</select>
      </label>
      <label class="qty">Quantity
        <input type="number" name="quantity" value="1" min="1" max="99" required>
      </label>
      <button class="button" type="submit"${anyAvailable ? "" : " disabled"}>${anyAvailable ? "Add to cart" : "Sold out"}</button>
    </form>`
        : `<p class="muted">This product has no variants for sale.</p>`
    }
    ${product.description ? `<div class="description"><h2>Description</h2><p>${esc(product.description).replace(/\n+/g, "</p><p>")}</p></div>` : ""}
  </div>
</article>`
}

export function cartPage({ cart, locale, error = "" }) {
  const items = (cart?.items ?? []).slice().sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)))
  if (!items.length) {
    return `
<section class="hero"><h1>Your cart</h1></section>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ""}
<div class="empty"><p>Your cart is empty.</p><p><a class="button" href="/">Continue shopping</a></p></div>`
  }
  const cur = cart.currency_code
  const rows = items
    .map(
      (i) => `
  <li class="line">
    ${image(i.thumbnail, i.product_title || i.title, "line-img")}
    <div class="line-info">
      <a class="line-title" href="/products/${encodeURIComponent(i.product_handle || "")}">${esc(i.product_title || i.title)}</a>
      ${i.variant_title ? `<span class="muted">${esc(i.variant_title)}</span>` : ""}
      <span class="muted">${esc(formatPrice(i.unit_price, cur, locale))} each</span>
    </div>
    <form class="line-qty" method="post" action="/cart/items/${esc(encodeURIComponent(i.id))}">
      <label class="sr-only" for="q-${esc(i.id)}">Quantity</label>
      <input id="q-${esc(i.id)}" type="number" name="quantity" value="${esc(i.quantity)}" min="0" max="99">
      <button class="button ghost small" type="submit">Update</button>
    </form>
    <strong class="line-total">${esc(formatPrice(i.total ?? i.subtotal, cur, locale))}</strong>
    <form method="post" action="/cart/items/${esc(encodeURIComponent(i.id))}/delete">
      <button class="link-button" type="submit" aria-label="Remove ${esc(i.product_title || i.title)}">Remove</button>
    </form>
  </li>`
    )
    .join("")
  const line = (label, value, cls = "") =>
    `<div class="sum-row ${cls}"><span>${esc(label)}</span><span>${esc(formatPrice(value, cur, locale))}</span></div>`
  return `
<section class="hero"><h1>Your cart</h1></section>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ""}
<div class="cart">
  <ul class="lines">${rows}</ul>
  <aside class="summary">
    <h2>Summary</h2>
    ${line("Subtotal", cart.item_subtotal ?? cart.subtotal)}
    ${Number(cart.discount_total) > 0 ? line("Discount", -Number(cart.discount_total)) : ""}
    ${Number(cart.shipping_total) > 0 ? line("Shipping", cart.shipping_total) : `<div class="sum-row"><span>Shipping</span><span class="muted">At checkout</span></div>`}
    ${line("Taxes", cart.tax_total ?? 0)}
    ${line("Total", cart.total, "total")}
    <button class="button wide" type="button" disabled>Checkout</button>
    <p class="muted small">Online checkout is not open yet for this store.</p>
  </aside>
</div>`
}

export function messagePage({ heading, text }) {
  return `
<div class="empty">
  <h1>${esc(heading)}</h1>
  <p class="muted">${esc(text)}</p>
  <p><a class="button" href="/">Back to the shop</a></p>
</div>`
}
