// storefleet's Medusa configuration. Everything comes from the environment at
// run time (one image serves every store); see images/README.md for the
// contract. Only `admin.*` is baked into the admin UI at `medusa build`.
import path from "node:path"
import { defineConfig, loadEnv, Modules } from "@medusajs/framework/utils"

loadEnv(process.env.NODE_ENV || "development", process.cwd())

const env = process.env
const isProduction = env.NODE_ENV === "production"

// The CLI command being run (`start`, `db:migrate`, `exec`, `build`, ...).
const command = process.argv.slice(2).find((a) => !a.startsWith("-")) ?? ""

function secret(name: "JWT_SECRET" | "COOKIE_SECRET"): void {
  const value = env[name]
  // In production Medusa has no default secret and fails later, with a less
  // helpful message (`medusa build` needs none).
  if (!value && isProduction && command !== "build") {
    throw new Error(`${name} must be set when NODE_ENV=production`)
  }
}

function workerMode(): "shared" | "server" | "worker" {
  const mode = env.MEDUSA_WORKER_MODE || "shared"
  if (mode !== "shared" && mode !== "server" && mode !== "worker") {
    throw new Error(`MEDUSA_WORKER_MODE must be shared, server or worker, not "${mode}"`)
  }
  return mode
}

// The session cookie's Secure flag. "auto" (default) lets express-session set
// it from the request: plain http (local clusters, port-forwards) gets a
// cookie the browser keeps, and https terminated at the ingress
// (X-Forwarded-Proto: https; Medusa trusts one proxy hop) gets a Secure one.
function cookieSecure(): boolean | "auto" {
  const value = (env.MEDUSA_COOKIE_SECURE || "auto").toLowerCase()
  if (value === "true") return true
  if (value === "false") return false
  if (value === "auto") return "auto"
  throw new Error(`MEDUSA_COOKIE_SECURE must be auto, true or false, not "${value}"`)
}

// Public base URL of the backend (the store's URL behind the ingress), used
// for the links to uploaded files. Trailing slashes are dropped.
const backendUrl = (env.MEDUSA_BACKEND_URL || "http://localhost:9000").replace(/\/+$/, "")

// Uploaded files (product images, imports/exports). In the image this is a
// volume; /static serves it (see src/api/middlewares.ts).
const uploadDir = path.resolve(env.MEDUSA_UPLOAD_DIR || path.join(process.cwd(), "static"))

const redisUrl = env.REDIS_URL || undefined

// With Redis, the server and the worker share one event bus, workflow engine,
// lock and cache; without it every process uses in-memory modules and
// subscribers run in the process that emitted the event.
const redisModules = redisUrl
  ? [
      {
        resolve: "@medusajs/medusa/event-bus-redis",
        options: { redisUrl },
      },
      {
        resolve: "@medusajs/medusa/workflow-engine-redis",
        options: { redis: { redisUrl } },
      },
      {
        resolve: "@medusajs/medusa/locking",
        options: {
          providers: [
            {
              resolve: "@medusajs/medusa/locking-redis",
              id: "locking-redis",
              is_default: true,
              options: { redisUrl },
            },
          ],
        },
      },
      // The (legacy, always loaded) cache module ...
      {
        resolve: "@medusajs/medusa/cache-redis",
        options: { redisUrl },
      },
      // ... and the newer caching module (used where the `caching` feature
      // flag is on) with its Redis provider.
      {
        resolve: "@medusajs/medusa/caching",
        options: {
          providers: [
            {
              resolve: "@medusajs/medusa/caching-redis",
              id: "caching-redis",
              is_default: true,
              options: { redisUrl },
            },
          ],
        },
      },
    ]
  : []

secret("JWT_SECRET")
secret("COOKIE_SECRET")

module.exports = defineConfig({
  projectConfig: {
    // Medusa reads DATABASE_URL itself (its default in development:
    // postgres://localhost/medusa-starter-default).
    http: {
      storeCors: env.STORE_CORS || "http://localhost:8000",
      adminCors: env.ADMIN_CORS || "http://localhost:9000",
      authCors: env.AUTH_CORS || "http://localhost:9000",
      // Unset keys keep Medusa's own handling of JWT_SECRET and COOKIE_SECRET
      // (a development default, none in production).
      ...(env.JWT_SECRET ? { jwtSecret: env.JWT_SECRET } : {}),
      ...(env.COOKIE_SECRET ? { cookieSecret: env.COOKIE_SECRET } : {}),
    },
    // Sessions live in Redis when it is configured, so any server replica can
    // serve a logged-in admin.
    ...(redisUrl ? { redisUrl } : {}),
    workerMode: workerMode(),
    cookieOptions: {
      // express-session accepts "auto"; Medusa's type says boolean.
      secure: cookieSecure() as boolean,
      sameSite: "lax",
    },
  },
  admin: {
    disable: env.DISABLE_MEDUSA_ADMIN === "true",
    path: "/app",
    // Same origin as the page: one image serves every store, whatever its
    // host. (Medusa's default would bake MEDUSA_BACKEND_URL in at build time.)
    backendUrl: "/",
  },
  modules: [
    {
      resolve: "@medusajs/medusa/file",
      key: Modules.FILE,
      options: {
        providers: [
          {
            resolve: "@medusajs/medusa/file-local",
            id: "local",
            options: {
              upload_dir: uploadDir,
              private_upload_dir: uploadDir,
              backend_url: `${backendUrl}/static`,
            },
          },
        ],
      },
    },
    ...redisModules,
  ],
})
