// Run-time configuration of the storefront: the environment, then what the
// backend tells it (GET /storefleet/storefront-config), so one image serves
// every store and nothing is baked in at build time.
import Medusa from "@medusajs/js-sdk"

export function readEnv(env = process.env) {
  const port = Number(env.PORT || 8000)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`PORT must be a TCP port, not "${env.PORT}"`)
  }
  const timeoutMs = Number(env.BACKEND_TIMEOUT_MS || 10000)
  return {
    port,
    host: env.HOST || "0.0.0.0",
    // In-cluster URL of the Medusa server (the storefront calls it server-side only).
    backendUrl: (env.MEDUSA_BACKEND_URL || "http://localhost:9000").replace(/\/+$/, ""),
    // Optional overrides; by default both come from the backend.
    publishableKey: env.MEDUSA_PUBLISHABLE_KEY || "",
    regionId: env.MEDUSA_REGION_ID || "",
    storeName: env.STORE_NAME || "",
    locale: env.STOREFRONT_LOCALE || "en-US",
    // The cart cookie's Secure flag: auto = when the request came over https
    // (X-Forwarded-Proto from the ingress).
    cookieSecure: (env.STOREFRONT_COOKIE_SECURE || "auto").toLowerCase(),
    timeoutMs: Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : 10000,
    // How long a fetched store config is trusted before it is fetched again.
    configTtlMs: 60_000,
  }
}

// Store holds the backend's configuration and the js-sdk client built on it;
// it refreshes them after configTtlMs, or at once when the backend rejects the
// publishable key (revoked and re-created by the bootstrap).
export class Store {
  constructor(env, { fetchImpl = globalThis.fetch, log = console } = {}) {
    this.env = env
    this.fetch = fetchImpl
    this.log = log
    this.current = null
    this.fetchedAt = 0
    this.pending = null
  }

  async get({ force = false } = {}) {
    const fresh = this.current && Date.now() - this.fetchedAt < this.env.configTtlMs
    if (fresh && !force) return this.current
    if (!this.pending) {
      this.pending = this.load()
        .then((cfg) => {
          this.current = cfg
          this.fetchedAt = Date.now()
          return cfg
        })
        .catch((err) => {
          // A stale config beats none while the backend restarts.
          if (this.current && !force) {
            this.log.warn(`storefront: keeping the previous store config: ${err.message}`)
            return this.current
          }
          throw err
        })
        .finally(() => {
          this.pending = null
        })
    }
    return this.pending
  }

  async load() {
    let remote = {}
    if (!this.env.publishableKey || !this.env.regionId) {
      const res = await this.fetch(`${this.env.backendUrl}/storefleet/storefront-config`, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(this.env.timeoutMs),
      })
      if (!res.ok) {
        throw new Error(`backend store config: HTTP ${res.status}`)
      }
      remote = await res.json()
    }
    const publishableKey = this.env.publishableKey || remote.publishable_key
    const regionId = this.env.regionId || remote.default_region_id
    if (!publishableKey || !regionId) {
      throw new Error("backend store config has no publishable key or region")
    }
    const sdk = new Medusa({
      baseUrl: this.env.backendUrl,
      publishableKey,
      auth: { type: "jwt", jwtTokenStorageMethod: "nostore" },
    })
    const { region } = await sdk.store.region.retrieve(regionId, { fields: "id,name,currency_code,*countries" })
    if (this.current?.publishableKey !== publishableKey) {
      this.log.info(`storefront: using publishable key ${publishableKey.slice(0, 10)}… and region ${region.id} (${region.currency_code})`)
    }
    return {
      sdk,
      publishableKey,
      region,
      storeName: this.env.storeName || remote.store_name || "Store",
    }
  }
}

// isKeyError tells a rejected publishable key (worth a config refresh) from
// other errors.
export function isKeyError(err) {
  return (
    (err?.status === 400 || err?.status === 401 || err?.status === 403) &&
    /publishable|api key/i.test(String(err?.message))
  )
}
