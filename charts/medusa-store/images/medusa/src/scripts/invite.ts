// medusa exec ./src/scripts/invite.ts   (in the image: `storefleet-invite`)
//
// Gives the store's owner admin access without any password passing through
// the platform: prints a ONE-TIME link the owner opens to choose a password.
//
//   INVITE_EMAIL     the owner's e-mail (required)
//   INVITE_BASE_URL  public URL of the store (default MEDUSA_BACKEND_URL,
//                    then http://localhost:9000); the admin is at <url>/app
//
// - No admin with that e-mail yet: an admin invite (Medusa's
//   createInvitesWorkflow), valid 24 h, usable once. Re-running rotates the
//   token of the pending invite, so an earlier link stops working.
// - The admin exists already (a lost password): a password-reset link, valid
//   15 minutes.
//
// Output: exactly one JSON line on file descriptor $STOREFLEET_RESULT_FD when
// it is set (the `storefleet-invite` wrapper points it at stdout and sends
// Medusa's logs to stderr), otherwise on stdout among the logs:
//   {"storefleet_invite":{"kind":"invite","email":"…","url":"…","token":"…","expires_at":"…"}}
// The token is a credential until used: hand it to the owner only.
import fs from "node:fs"
import type { ExecArgs } from "@medusajs/framework/types"
import { ContainerRegistrationKeys, Modules } from "@medusajs/framework/utils"
import {
  createInvitesWorkflow,
  generateResetPasswordTokenWorkflow,
  refreshInviteTokensWorkflow,
} from "@medusajs/medusa/core-flows"

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
  const logger = container.resolve(ContainerRegistrationKeys.LOGGER)
  const email = (process.env.INVITE_EMAIL || "").trim().toLowerCase()
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
    throw new Error("INVITE_EMAIL must be set to the owner's e-mail address")
  }
  const base = (process.env.INVITE_BASE_URL || process.env.MEDUSA_BACKEND_URL || "http://localhost:9000").replace(/\/+$/, "")
  const users = container.resolve(Modules.USER)

  const [existing] = await users.listUsers({ email })
  if (existing) {
    const { http } = container.resolve(ContainerRegistrationKeys.CONFIG_MODULE).projectConfig
    const { result: token } = await generateResetPasswordTokenWorkflow(container).run({
      input: {
        entityId: email,
        actorType: "user",
        provider: "emailpass",
        secret: http.jwtSecret as string,
        jwtOptions: http.jwtOptions,
      },
    })
    logger.info(`invite: ${email} is an admin already; issued a password-reset link`)
    emit({
      kind: "reset",
      email,
      url: `${base}/app/reset-password?token=${encodeURIComponent(token)}`,
      token,
      expires_at: new Date(Date.now() + 15 * 60 * 1000).toISOString(),
    })
    return
  }

  const pending = (await users.listInvites({ email })).filter((i) => !i.accepted)
  let inv
  if (pending.length) {
    const { result } = await refreshInviteTokensWorkflow(container).run({
      input: { invite_ids: [pending[0].id] },
    })
    inv = result[0]
    logger.info(`invite: rotated the pending invite ${inv.id}`)
  } else {
    const { result } = await createInvitesWorkflow(container).run({
      input: { invites: [{ email }] },
    })
    inv = result[0]
    logger.info(`invite: created invite ${inv.id}`)
  }
  emit({
    kind: "invite",
    email,
    url: `${base}/app/invite?token=${encodeURIComponent(inv.token)}`,
    token: inv.token,
    expires_at: new Date(inv.expires_at).toISOString(),
  })
}
