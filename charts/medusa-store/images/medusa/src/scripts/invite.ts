// medusa exec ./src/scripts/invite.ts   (in the image: `invite`)
//
// One-time admin access for INVITE_EMAIL from a shell (src/lib/admin-access.ts
// says what it issues); the platform's Intent API asks the running server
// instead (POST /storefleet/admin-invite).
//
//   INVITE_EMAIL     the owner's e-mail (required)
//   INVITE_BASE_URL  public URL of the store (default MEDUSA_BACKEND_URL,
//                    then http://localhost:9000); the admin is at <url>/app
//
// Output: exactly one JSON line on file descriptor $STOREFLEET_RESULT_FD when
// it is set (the image's `invite` command points it at stdout and sends
// Medusa's logs to stderr), otherwise on stdout among the logs:
//   {"storefleet_invite":{"kind":"invite","email":"…","url":"…","token":"…","expires_at":"…"}}
// The token is a credential until used: hand it to the owner only.
import fs from "node:fs"
import type { ExecArgs } from "@medusajs/framework/types"
import { issueAdminAccess, validEmail } from "../lib/admin-access"

function emit(result: Record<string, unknown>) {
  const line = JSON.stringify({ storefleet_invite: result }) + "\n"
  const fd = Number(process.env.STOREFLEET_RESULT_FD)
  if (Number.isInteger(fd) && fd > 2) {
    fs.writeSync(fd, line)
  } else {
    process.stdout.write(line)
  }
}

export default async function invite({ container }: ExecArgs) {
  const email = validEmail(process.env.INVITE_EMAIL)
  if (!email) {
    throw new Error("INVITE_EMAIL must be set to the owner's e-mail address")
  }
  const base = process.env.INVITE_BASE_URL || process.env.MEDUSA_BACKEND_URL || "http://localhost:9000"
  emit(await issueAdminAccess(container, email, base))
}
