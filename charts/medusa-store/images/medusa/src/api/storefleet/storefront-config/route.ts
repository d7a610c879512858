import type { MedusaRequest, MedusaResponse } from "@medusajs/framework/http"
import { ContainerRegistrationKeys } from "@medusajs/framework/utils"
import { STOREFRONT_KEY_TITLE } from "../../../lib/storefleet"

// GET /storefleet/storefront-config: what the storefront needs at run time to
// call the store API (its publishable key, which is public by design: it goes
// to every browser of a Medusa storefront) and the store's default region.
// Outside /store, so it needs no key itself; the ingress does not route
// /storefleet, only the storefront reaches it inside the namespace.
export async function GET(req: MedusaRequest, res: MedusaResponse) {
  const query = req.scope.resolve(ContainerRegistrationKeys.QUERY)

  const { data: keys } = await query.graph({
    entity: "api_key",
    fields: ["id", "token", "title", "revoked_at", "created_at"],
    filters: { type: "publishable", title: STOREFRONT_KEY_TITLE, revoked_at: null } as any,
  })
  const { data: stores } = await query.graph({
    entity: "store",
    fields: ["id", "name", "default_region_id", "default_sales_channel_id"],
  })

  const key = keys.sort((a: any, b: any) => String(a.created_at).localeCompare(String(b.created_at)))[0]
  const store = stores[0]
  if (!key || !store?.default_region_id) {
    // Not bootstrapped yet: the storefront stays unready and retries.
    res.status(503).json({ message: "store not bootstrapped yet" })
    return
  }
  res.setHeader("Cache-Control", "no-store")
  res.json({
    publishable_key: key.token,
    store_name: store.name,
    default_region_id: store.default_region_id,
  })
}
