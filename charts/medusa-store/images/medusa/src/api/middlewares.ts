import path from "node:path"
import express from "express"
import { defineMiddlewares } from "@medusajs/framework/http"

// Medusa serves <cwd>/static under /static; the file-local provider writes to
// MEDUSA_UPLOAD_DIR (a volume in the image). Serve that directory too, after
// Medusa's own static handler (which falls through on a miss).
const uploadDir = path.resolve(process.env.MEDUSA_UPLOAD_DIR || path.join(process.cwd(), "static"))
const builtIn = path.resolve(process.cwd(), "static")

export default defineMiddlewares({
  routes:
    uploadDir === builtIn
      ? []
      : [
          {
            matcher: "/static",
            middlewares: [express.static(uploadDir, { index: false, fallthrough: true }) as any],
          },
        ],
})
