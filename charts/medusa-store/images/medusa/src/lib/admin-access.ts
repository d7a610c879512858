// One-time admin access for a store's owner, shared by the `invite` script
// (an operator at a shell) and the platform's route (the Intent API): no
// password ever passes through the platform, only a link the owner opens once
// to choose one.
//
// - No admin with that e-mail yet: an admin invite (Medusa's
//   createInvitesWorkflow), valid 24 h, usable once. Asking again rotates the
//   token of the pending invite, so an earlier link stops working.
// - The admin exists already (a lost password): a password-reset link, valid
//   15 minutes.
import type { MedusaContainer } from "@medusajs/framework/types"
import { ContainerRegistrationKeys, Modules } from "@medusajs/framework/utils"
import {
  createInvitesWorkflow,
  generateResetPasswordTokenWorkflow,
  refreshInviteTokensWorkflow,
} from "@medusajs/medusa/core-flows"

export type AdminAccess = {
  kind: "invite" | "reset"
  email: string
  url: string
  token: string
  expires_at: string
}

const EMAIL = /^[^\s@]+@[^\s@]+$/

export function validEmail(raw: unknown): string | undefined {
  const email = String(raw ?? "").trim().toLowerCase()
  return EMAIL.test(email) ? email : undefined
}

// issueAdminAccess returns the link for email; base is the store's public
// URL (the admin is at <base>/app). The token is a credential until used:
// callers hand it to the owner only and never log it.
export async function issueAdminAccess(container: MedusaContainer, email: string, base: string): Promise<AdminAccess> {
  const logger = container.resolve(ContainerRegistrationKeys.LOGGER)
  base = base.replace(/\/+$/, "")
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
    logger.info(`storefleet: ${email} is an admin already; issued a password-reset link`)
    return {
      kind: "reset",
      email,
      url: `${base}/app/reset-password?token=${encodeURIComponent(token)}`,
      token,
      expires_at: new Date(Date.now() + 15 * 60 * 1000).toISOString(),
    }
  }

  const pending = (await users.listInvites({ email })).filter((i) => !i.accepted)
  let inv
  if (pending.length) {
    const { result } = await refreshInviteTokensWorkflow(container).run({
      input: { invite_ids: [pending[0].id] },
    })
    inv = result[0]
    logger.info(`storefleet: rotated the pending admin invite ${inv.id}`)
  } else {
    const { result } = await createInvitesWorkflow(container).run({
      input: { invites: [{ email }] },
    })
    inv = result[0]
    logger.info(`storefleet: created admin invite ${inv.id}`)
  }
  return {
    kind: "invite",
    email,
    url: `${base}/app/invite?token=${encodeURIComponent(inv.token)}`,
    token: inv.token,
    expires_at: new Date(inv.expires_at).toISOString(),
  }
}
