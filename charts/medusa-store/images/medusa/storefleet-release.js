// storefleet-release: which chart revision's migrations and bootstrap have
// finished, in a one-table ledger of the store's own database.
//
//   mark-release   record STOREFLEET_RELEASE_REVISION as done (the last step
//                  of the Job medusa-migrate-<revision>)
//   await-release  wait until that revision (or a later one) is done (the
//                  init container of the server and the worker)
//
// So one Job migrates per release and replicas never race on the schema.
// Plain `pg` (Medusa's own driver), no Medusa boot: it runs before the schema
// exists.
"use strict"
const { Client } = require("pg")

const mode = process.argv[2]
const revision = Number.parseInt(process.env.STOREFLEET_RELEASE_REVISION || "", 10)
if (!Number.isInteger(revision) || revision < 1) {
  console.error("STOREFLEET_RELEASE_REVISION must be the release revision (a positive integer)")
  process.exit(2)
}
const url = process.env.DATABASE_URL
if (!url) {
  console.error("DATABASE_URL is required")
  process.exit(2)
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function withClient(fn) {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end().catch(() => {})
  }
}

async function mark() {
  await withClient(async (c) => {
    await c.query("CREATE TABLE IF NOT EXISTS storefleet_release (revision integer PRIMARY KEY, finished_at timestamptz NOT NULL DEFAULT now())")
    await c.query("INSERT INTO storefleet_release (revision) VALUES ($1) ON CONFLICT DO NOTHING", [revision])
  })
  console.log(`release revision ${revision}: migrations and bootstrap done`)
}

async function awaitDone() {
  let said = 0
  for (;;) {
    let done = 0
    let why = ""
    try {
      done = await withClient(async (c) => {
        const r = await c.query("SELECT coalesce(max(revision), 0) AS done FROM storefleet_release")
        return Number(r.rows[0].done)
      })
    } catch (err) {
      // 42P01: no ledger yet (the first migration is still running).
      why = err.code === "42P01" ? "no migration has finished yet" : String(err.message || err)
    }
    if (done >= revision) {
      console.log(`release revision ${revision} is migrated (ledger at ${done})`)
      return
    }
    if (Date.now() - said > 10000) {
      console.log(`waiting for the migrations of revision ${revision} (Job medusa-migrate-${revision}): ${why || "ledger at " + done}`)
      said = Date.now()
    }
    await sleep(2000)
  }
}

;(mode === "mark-release" ? mark() : mode === "await-release" ? awaitDone() : Promise.reject(new Error("usage: storefleet-release mark-release|await-release")))
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(String(err.stack || err))
    process.exit(1)
  })
