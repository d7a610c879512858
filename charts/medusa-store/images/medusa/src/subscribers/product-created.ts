import type { SubscriberArgs, SubscriberConfig } from "@medusajs/framework"
import { ContainerRegistrationKeys } from "@medusajs/framework/utils"

// Logs every created product, with the process that handled the event: with
// Redis and MEDUSA_WORKER_MODE=server/worker, events emitted by the server are
// handled by the worker (this line appears in the worker's log only).
export default async function productCreated({ event, container }: SubscriberArgs<{ id: string }>) {
  const logger = container.resolve(ContainerRegistrationKeys.LOGGER)
  logger.info(
    `storefleet: product.created ${event.data.id} handled by pid ${process.pid} (worker mode ${process.env.MEDUSA_WORKER_MODE || "shared"})`
  )
}

export const config: SubscriberConfig = {
  event: "product.created",
}
