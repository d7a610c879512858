import crypto from "node:crypto"
import fs from "node:fs"
import type { MedusaRequest, MedusaResponse } from "@medusajs/framework/http"
import { issueAdminAccess, validEmail } from "../../../lib/admin-access"

// POST /storefleet/admin-invite {"email": "...", "base_url": "http://shop.example.com"}
//
// The platform's way into a store's admin for its owner: storefleet's Intent
// API calls it (owner-only and audited there) and hands the one-time link to
// the owner alone. It is authorised by the store's platform token, a random
// value in the Secret the operator keeps for this route only, mounted as a
// file (STOREFLEET_ADMIN_INVITE_TOKEN_FILE), so a rotated Secret needs no
// restart. The ingress does not route /storefleet; the namespace's network
// policy admits only the platform's API to the backend.
//
// Answers: 200 with the link (Cache-Control: no-store), 400 bad body,
// 401 missing or wrong token, 503 no token provisioned.
const tokenFile = process.env.STOREFLEET_ADMIN_INVITE_TOKEN_FILE || "/var/run/storefleet/admin-invite/token"

function platformToken(): Buffer | undefined {
  try {
    const t = fs.readFileSync(tokenFile).toString().trim()
    return t.length >= 32 ? Buffer.from(t) : undefined
  } catch {
    return undefined
  }
}

function authorised(header: string | undefined, want: Buffer): boolean {
  const m = /^Bearer (.+)$/.exec(header || "")
  if (!m) return false
  const got = Buffer.from(m[1].trim())
  return got.length === want.length && crypto.timingSafeEqual(got, want)
}

export async function POST(req: MedusaRequest, res: MedusaResponse) {
  res.setHeader("Cache-Control", "no-store")
  const want = platformToken()
  if (!want) {
    res.status(503).json({ message: "this store has no platform token provisioned (Secret mount " + tokenFile + ")" })
    return
  }
  if (!authorised(req.headers.authorization, want)) {
    res.status(401).json({ message: "a valid platform token is required" })
    return
  }
  const body = (req.body || {}) as Record<string, unknown>
  const email = validEmail(body.email)
  if (!email) {
    res.status(400).json({ message: "email must be an e-mail address" })
    return
  }
  let base: URL
  try {
    base = new URL(String(body.base_url || ""))
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new Error("scheme")
  } catch {
    res.status(400).json({ message: "base_url must be the store's http(s) URL" })
    return
  }
  res.json(await issueAdminAccess(req.scope, email, base.origin))
}
