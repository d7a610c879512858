#!/usr/bin/env node
// Checks, offline, that the images agree on the pinned versions:
//   - images/medusa/package.json is THE place of the Medusa version: every
//     @medusajs/* dependency there is the same exact version, and its
//     package-lock.json resolved them to it;
//   - the storefront's @medusajs/js-sdk is that version too;
//   - both Containerfiles pin the same Node.js and npm (and checksums);
//   - no lockfile records a download address (`resolved`) or a non-registry
//     source, so `npm ci` takes everything from the configured registry.
// Prints the versions as KEY=value lines (for a build tool to tag images
// with) and exits 1 on any mismatch.
import fs from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"

const dir = path.dirname(fileURLToPath(import.meta.url))
const read = (p) => fs.readFileSync(path.join(dir, p), "utf8")
const json = (p) => JSON.parse(read(p))
const errors = []

const medusaPkg = json("medusa/package.json")
const medusaLock = json("medusa/package-lock.json")
const frontPkg = json("storefront/package.json")
const frontLock = json("storefront/package-lock.json")

const pins = Object.entries({ ...medusaPkg.dependencies, ...medusaPkg.devDependencies })
for (const [name, range] of pins) {
  if (!/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(range)) errors.push(`medusa/package.json: ${name} is "${range}", not an exact version`)
}
const medusaVersions = new Set(pins.filter(([n]) => n.startsWith("@medusajs/")).map(([, v]) => v))
if (medusaVersions.size !== 1) errors.push(`medusa/package.json: @medusajs/* versions differ: ${[...medusaVersions].join(", ")}`)
const MEDUSA_VERSION = [...medusaVersions][0]
for (const [name, version] of pins) {
  const locked = medusaLock.packages?.[`node_modules/${name}`]?.version
  if (locked !== version) errors.push(`medusa/package-lock.json: ${name} is ${locked}, package.json pins ${version}`)
}
const sdk = frontPkg.dependencies?.["@medusajs/js-sdk"]
if (sdk !== MEDUSA_VERSION) errors.push(`storefront/package.json: @medusajs/js-sdk is ${sdk}, Medusa is ${MEDUSA_VERSION}`)
if (frontLock.packages?.["node_modules/@medusajs/js-sdk"]?.version !== MEDUSA_VERSION) errors.push("storefront/package-lock.json: js-sdk not locked to the Medusa version")

for (const [file, lock] of [["medusa/package-lock.json", medusaLock], ["storefront/package-lock.json", frontLock]]) {
  for (const [key, entry] of Object.entries(lock.packages ?? {})) {
    if (key === "") continue
    if (entry.resolved) errors.push(`${file}: ${key} records a download address (${entry.resolved})`)
    if (entry.link) errors.push(`${file}: ${key} is a link, not a registry package`)
    if (!entry.integrity && !entry.link) errors.push(`${file}: ${key} has no integrity`)
  }
}

const args = (file) =>
  Object.fromEntries([...read(file).matchAll(/^ARG (NODE_PACKAGE|NODE_VERSION|NODE_SHA512|NPM_VERSION|NPM_SHA512)=(\S+)$/gm)].map((m) => [m[1], m[2]]))
const a = args("medusa/Containerfile")
const b = args("storefront/Containerfile")
for (const k of ["NODE_PACKAGE", "NODE_VERSION", "NODE_SHA512", "NPM_VERSION", "NPM_SHA512"]) {
  if (!a[k]) errors.push(`medusa/Containerfile: no ARG ${k}`)
  if (a[k] !== b[k]) errors.push(`Containerfiles disagree on ${k}: medusa ${a[k]}, storefront ${b[k]}`)
}
const nodeMajor = Number(String(a.NODE_VERSION).split(".")[0])
if (nodeMajor !== 22) errors.push(`NODE_VERSION ${a.NODE_VERSION} is not Node 22 LTS`)

if (errors.length) {
  for (const e of errors) console.error(`check-versions: ${e}`)
  process.exit(1)
}
console.log(`MEDUSA_VERSION=${MEDUSA_VERSION}`)
console.log(`NODE_VERSION=${a.NODE_VERSION}`)
console.log(`NPM_VERSION=${a.NPM_VERSION}`)
