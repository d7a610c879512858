// medusa exec ./src/scripts/bootstrap.ts
//
// Makes a freshly migrated store sellable, once: a default region (currency
// and countries from the environment), tax regions, a stock location linked to
// the default sales channel, a fulfillment set with a service zone and a
// shipping option, the storefront's publishable API key and, only with
// SEED_SAMPLE_PRODUCTS=true, one sample product with prices and stock.
//
// Idempotent: every object is looked up first and created only when absent,
// so the Job can run after every migration. It prints no secret (the
// publishable key is public by design, and is read by the storefront from
// GET /storefleet/storefront-config, not from this output).
//
// Environment:
//   STORE_NAME            store name (default: left as it is, "Medusa Store")
//   STORE_CURRENCY        ISO 4217 code of the default region (default eur)
//   STORE_COUNTRIES       comma-separated ISO 3166-1 alpha-2 codes of the region
//                         (default: per currency, e.g. eur → de,fr,it,es,nl,be,at)
//   STORE_REGION_NAME     region name (default "Europe" for eur, else the currency)
//   STORE_SHIPPING_AMOUNT flat shipping price in major units (default 5)
//   SEED_SAMPLE_PRODUCTS  "true" to create the sample product
import type { ExecArgs } from "@medusajs/framework/types"
import { ContainerRegistrationKeys, Modules } from "@medusajs/framework/utils"
import {
  createApiKeysWorkflow,
  createInventoryLevelsWorkflow,
  createLocationFulfillmentSetWorkflow,
  createProductsWorkflow,
  createRegionsWorkflow,
  createServiceZonesWorkflow,
  createShippingOptionsWorkflow,
  createShippingProfilesWorkflow,
  createStockLocationsWorkflow,
  createTaxRegionsWorkflow,
  linkSalesChannelsToApiKeyWorkflow,
  linkSalesChannelsToStockLocationWorkflow,
  updateStoresWorkflow,
} from "@medusajs/medusa/core-flows"
import { BOOTSTRAP_METADATA_KEY, SAMPLE_PRODUCT_HANDLE, STOREFRONT_KEY_TITLE } from "../lib/storefleet"

const DEFAULT_COUNTRIES: Record<string, string[]> = {
  eur: ["de", "fr", "it", "es", "nl", "be", "at"],
  usd: ["us"],
  gbp: ["gb"],
  chf: ["ch"],
  cad: ["ca"],
  aud: ["au"],
  sek: ["se"],
  dkk: ["dk"],
  nok: ["no"],
  pln: ["pl"],
  czk: ["cz"],
  jpy: ["jp"],
}

const STOCK_LOCATION_NAME = "Main warehouse"
const FULFILLMENT_SET_NAME = "Main warehouse shipping"
const SHIPPING_OPTION_NAME = "Standard shipping"

type Settings = {
  storeName?: string
  currency: string
  countries: string[]
  regionName: string
  shippingAmount: number
  seedSample: boolean
}

function settings(): Settings {
  const currency = (process.env.STORE_CURRENCY || "eur").trim().toLowerCase()
  if (!/^[a-z]{3}$/.test(currency)) {
    throw new Error(`STORE_CURRENCY must be a 3-letter ISO 4217 code, not "${currency}"`)
  }
  const countries = process.env.STORE_COUNTRIES
    ? process.env.STORE_COUNTRIES.split(",").map((c) => c.trim().toLowerCase()).filter(Boolean)
    : DEFAULT_COUNTRIES[currency]
  if (!countries?.length) {
    throw new Error(`STORE_COUNTRIES is required for currency ${currency}`)
  }
  for (const c of countries) {
    if (!/^[a-z]{2}$/.test(c)) throw new Error(`STORE_COUNTRIES: "${c}" is not an ISO 3166-1 alpha-2 code`)
  }
  const shippingAmount = Number(process.env.STORE_SHIPPING_AMOUNT ?? "5")
  if (!Number.isFinite(shippingAmount) || shippingAmount < 0) {
    throw new Error(`STORE_SHIPPING_AMOUNT must be a non-negative number`)
  }
  return {
    storeName: process.env.STORE_NAME?.trim() || undefined,
    currency,
    countries,
    regionName: process.env.STORE_REGION_NAME?.trim() || (currency === "eur" ? "Europe" : currency.toUpperCase()),
    shippingAmount,
    seedSample: process.env.SEED_SAMPLE_PRODUCTS === "true",
  }
}

export default async function bootstrap({ container }: ExecArgs) {
  const logger = container.resolve(ContainerRegistrationKeys.LOGGER)
  const locking = container.resolve(Modules.LOCKING)
  const s = settings()
  // Two Jobs at once (a retry racing a slow first run) must not both create.
  await locking.execute("storefleet:bootstrap", () => run(container, s, logger), { timeout: 600 })
}

async function run(container: ExecArgs["container"], s: Settings, logger: any) {
  const query = container.resolve(ContainerRegistrationKeys.QUERY)
  const link = container.resolve(ContainerRegistrationKeys.LINK)
  const fulfillment = container.resolve(Modules.FULFILLMENT)
  const changes: string[] = []
  const done = (what: string) => {
    changes.push(what)
    logger.info(`bootstrap: ${what}`)
  }

  // The store, its default sales channel and the default publishable key are
  // created by Medusa itself on every start (and by `medusa exec`).
  const {
    data: [store],
  } = await query.graph({
    entity: "store",
    fields: ["id", "name", "default_sales_channel_id", "default_region_id", "default_location_id", "supported_currencies.*"],
  })
  if (!store?.default_sales_channel_id) throw new Error("no store with a default sales channel: run `medusa db:migrate` first")
  const salesChannelId = store.default_sales_channel_id as string

  // 1. Currency and name of the store.
  const currencies = (store.supported_currencies ?? []) as any[]
  const hasCurrency = currencies.some((c) => c.currency_code === s.currency)
  if (!hasCurrency || (s.storeName && s.storeName !== store.name)) {
    await updateStoresWorkflow(container).run({
      input: {
        selector: { id: store.id },
        update: {
          ...(s.storeName ? { name: s.storeName } : {}),
          ...(!hasCurrency
            ? {
                supported_currencies: [
                  ...currencies
                    .filter((c) => c.currency_code !== s.currency)
                    .map((c) => ({ currency_code: c.currency_code, is_default: false, is_tax_inclusive: c.is_tax_inclusive })),
                  { currency_code: s.currency, is_default: true },
                ],
              }
            : {}),
        } as any,
      },
    })
    done(`store updated (${[s.storeName && "name", !hasCurrency && `currency ${s.currency}`].filter(Boolean).join(", ")})`)
  }

  // 2. Region: the one in the store's currency (an owner may rename it or add
  // countries in the admin; it is not reset).
  const { data: regions } = await query.graph({
    entity: "region",
    fields: ["id", "name", "currency_code", "countries.iso_2"],
    filters: { currency_code: s.currency },
  })
  let region = regions[0] as any
  if (!region) {
    // A country can belong to one region only.
    const { data: taken } = await query.graph({ entity: "region", fields: ["countries.iso_2"] })
    const used = new Set(taken.flatMap((r: any) => (r.countries ?? []).map((c: any) => c.iso_2)))
    const countries = s.countries.filter((c) => !used.has(c))
    const { result } = await createRegionsWorkflow(container).run({
      input: {
        regions: [
          {
            name: s.regionName,
            currency_code: s.currency,
            countries,
            payment_providers: ["pp_system_default"],
            automatic_taxes: true,
            metadata: { [BOOTSTRAP_METADATA_KEY]: true },
          },
        ],
      },
    })
    region = { ...result[0], countries: countries.map((iso_2) => ({ iso_2 })) }
    done(`region ${region.id} (${s.currency}, ${countries.join(",")}) created`)
  }
  const regionCountries: string[] = (region.countries ?? []).map((c: any) => c.iso_2)
  if (!store.default_region_id) {
    await updateStoresWorkflow(container).run({
      input: { selector: { id: store.id }, update: { default_region_id: region.id } as any },
    })
    done(`default region set to ${region.id}`)
  }

  // 3. Tax regions for the region's countries (system provider, no rates: an
  // owner sets rates in the admin).
  const { data: taxRegions } = await query.graph({ entity: "tax_region", fields: ["id", "country_code"] })
  const taxed = new Set(taxRegions.map((t: any) => t.country_code))
  const missingTax = regionCountries.filter((c) => !taxed.has(c))
  if (missingTax.length) {
    await createTaxRegionsWorkflow(container).run({
      input: missingTax.map((country_code) => ({ country_code, provider_id: "tp_system" })),
    })
    done(`tax regions ${missingTax.join(",")} created`)
  }

  // 4. Stock location, linked to the default sales channel and to the manual
  // fulfillment provider.
  const { data: locations } = await query.graph({
    entity: "stock_location",
    fields: ["id", "name", "sales_channels.id", "fulfillment_providers.id", "fulfillment_sets.id", "fulfillment_sets.name", "fulfillment_sets.service_zones.id"],
    filters: { name: STOCK_LOCATION_NAME },
  })
  let location = locations[0] as any
  if (!location) {
    const { result } = await createStockLocationsWorkflow(container).run({
      input: {
        locations: [
          {
            name: STOCK_LOCATION_NAME,
            address: { address_1: "", city: "", country_code: regionCountries[0] ?? s.countries[0] },
            metadata: { [BOOTSTRAP_METADATA_KEY]: true },
          } as any,
        ],
      },
    })
    location = { ...result[0], sales_channels: [], fulfillment_providers: [], fulfillment_sets: [] }
    done(`stock location ${location.id} created`)
  }
  if (!(location.sales_channels ?? []).some((c: any) => c?.id === salesChannelId)) {
    await linkSalesChannelsToStockLocationWorkflow(container).run({
      input: { id: location.id, add: [salesChannelId] },
    })
    done(`stock location linked to sales channel ${salesChannelId}`)
  }
  if (!(location.fulfillment_providers ?? []).some((p: any) => p?.id === "manual_manual")) {
    await link.create({
      [Modules.STOCK_LOCATION]: { stock_location_id: location.id },
      [Modules.FULFILLMENT]: { fulfillment_provider_id: "manual_manual" },
    })
    done("stock location linked to fulfillment provider manual_manual")
  }
  if (!store.default_location_id) {
    await updateStoresWorkflow(container).run({
      input: { selector: { id: store.id }, update: { default_location_id: location.id } as any },
    })
    done(`default location set to ${location.id}`)
  }

  // 5. Fulfillment set with a service zone covering the region's countries.
  let fset = (location.fulfillment_sets ?? []).find((f: any) => f?.name === FULFILLMENT_SET_NAME)
  if (!fset) {
    await createLocationFulfillmentSetWorkflow(container).run({
      input: { location_id: location.id, fulfillment_set_data: { name: FULFILLMENT_SET_NAME, type: "shipping" } },
    })
    const [created] = await fulfillment.listFulfillmentSets({ name: FULFILLMENT_SET_NAME }, { relations: ["service_zones"] })
    fset = created
    done(`fulfillment set ${fset.id} created`)
  }
  let zoneId: string | undefined = (fset.service_zones ?? [])[0]?.id
  if (!zoneId) {
    const { result } = await createServiceZonesWorkflow(container).run({
      input: {
        data: [
          {
            fulfillment_set_id: fset.id,
            name: s.regionName,
            geo_zones: regionCountries.map((country_code) => ({ country_code, type: "country" as const })),
          },
        ],
      },
    })
    zoneId = result[0].id
    done(`service zone ${zoneId} created`)
  }

  // 6. Shipping profile (Medusa creates a default one) and option.
  let [profile] = await fulfillment.listShippingProfiles({ type: "default" })
  if (!profile) {
    const { result } = await createShippingProfilesWorkflow(container).run({
      input: { data: [{ name: "Default Shipping Profile", type: "default" }] },
    })
    profile = result[0]
    done(`shipping profile ${profile.id} created`)
  }
  const options = await fulfillment.listShippingOptions({ service_zone_id: zoneId, name: SHIPPING_OPTION_NAME } as any)
  if (!options.length) {
    await createShippingOptionsWorkflow(container).run({
      input: [
        {
          name: SHIPPING_OPTION_NAME,
          price_type: "flat",
          provider_id: "manual_manual",
          service_zone_id: zoneId,
          shipping_profile_id: profile.id,
          type: { label: "Standard", description: "Delivered in 2-4 business days.", code: "standard" },
          prices: [
            { currency_code: s.currency, amount: s.shippingAmount },
            { region_id: region.id, amount: s.shippingAmount },
          ],
          rules: [
            { attribute: "enabled_in_store", value: "true", operator: "eq" },
            { attribute: "is_return", value: "false", operator: "eq" },
          ],
        },
      ],
    })
    done(`shipping option "${SHIPPING_OPTION_NAME}" created`)
  }

  // 7. The storefront's publishable key, on the default sales channel.
  const { data: keys } = await query.graph({
    entity: "api_key",
    fields: ["id", "revoked_at", "sales_channels.id"],
    filters: { type: "publishable", title: STOREFRONT_KEY_TITLE, revoked_at: null } as any,
  })
  let key = keys[0] as any
  if (!key) {
    const { result } = await createApiKeysWorkflow(container).run({
      input: { api_keys: [{ title: STOREFRONT_KEY_TITLE, type: "publishable", created_by: "" }] },
    })
    key = { ...result[0], sales_channels: [] }
    done(`publishable key ${key.id} "${STOREFRONT_KEY_TITLE}" created`)
  }
  if (!(key.sales_channels ?? []).some((c: any) => c?.id === salesChannelId)) {
    await linkSalesChannelsToApiKeyWorkflow(container).run({ input: { id: key.id, add: [salesChannelId] } })
    done(`publishable key linked to sales channel ${salesChannelId}`)
  }

  // 8. The sample product, only when asked for.
  if (s.seedSample) {
    await seedSample(container, s, { salesChannelId, regionId: region.id, locationId: location.id, profileId: profile.id }, done)
  }

  logger.info(
    changes.length ? `bootstrap: done, ${changes.length} change(s)` : "bootstrap: nothing to do, the store is already bootstrapped"
  )
}

async function seedSample(
  container: ExecArgs["container"],
  s: Settings,
  ids: { salesChannelId: string; regionId: string; locationId: string; profileId: string },
  done: (what: string) => void
) {
  const query = container.resolve(ContainerRegistrationKeys.QUERY)
  const products = container.resolve(Modules.PRODUCT)
  // A sample product the owner deleted stays deleted.
  const existing = await products.listProducts({ handle: SAMPLE_PRODUCT_HANDLE }, { withDeleted: true, select: ["id", "deleted_at"] })
  if (existing[0]?.deleted_at) return
  let productId = existing[0]?.id as string | undefined
  if (!productId) {
    const amount = s.currency === "jpy" ? 2500 : 25
    const { result } = await createProductsWorkflow(container).run({
      input: {
        products: [
          {
            title: "Sample T-Shirt",
            handle: SAMPLE_PRODUCT_HANDLE,
            subtitle: "Organic cotton, everyday fit",
            description:
              "A soft, breathable t-shirt made from organic cotton. This is a sample product created when the store was set up; edit or delete it in the admin.",
            status: "published",
            shipping_profile_id: ids.profileId,
            weight: 200,
            options: [{ title: "Size", values: ["S", "M", "L"] }],
            variants: ["S", "M", "L"].map((size) => ({
              title: size,
              sku: `SAMPLE-TSHIRT-${size}`,
              options: { Size: size },
              manage_inventory: true,
              prices: [{ amount, currency_code: s.currency }],
            })),
            sales_channels: [{ id: ids.salesChannelId }],
            metadata: { [BOOTSTRAP_METADATA_KEY]: true },
          },
        ],
      },
    })
    productId = result[0].id
    done(`sample product ${productId} created`)
  }

  // Stock at the location for the variants that have none there yet.
  const { data: items } = await query.graph({
    entity: "inventory_item",
    fields: ["id", "sku", "location_levels.location_id"],
    filters: { sku: ["S", "M", "L"].map((size) => `SAMPLE-TSHIRT-${size}`) },
  })
  const missing = items.filter((i: any) => !(i.location_levels ?? []).some((l: any) => l?.location_id === ids.locationId))
  if (missing.length) {
    await createInventoryLevelsWorkflow(container).run({
      input: {
        inventory_levels: missing.map((i: any) => ({
          location_id: ids.locationId,
          inventory_item_id: i.id,
          stocked_quantity: 100,
        })),
      },
    })
    done(`stock of ${missing.length} sample variant(s) set to 100`)
  }
}
