// Benchmark peer: XO's own path for `GET /rest/v0/vms?fields=...&filter=...`
// in Node: complex-matcher parse + createPredicate + match, lodash pick of
// the fields plus href, and JSON.stringify of the result, over the same XO
// VM objects xorest serves (read from a JSON file).
//
// Usage: node filter_node.mjs OBJECTS.json FILTER FIELDS N
// Prints one JSON line: {"client":..., "ops":N, "matched":M, "ns_per_op":T}
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const CM = require('complex-matcher')
const pick = require('lodash/pick.js')
const version = require('complex-matcher/package.json').version

const [file, filter, fields, n] = process.argv.slice(2)
const objects = JSON.parse(readFileSync(file, 'utf8'))
const fieldList = fields.split(',')

function handle() {
  const predicate = CM.parse(filter).createPredicate()
  const out = []
  for (const obj of objects) {
    if (predicate(obj)) {
      const o = pick(obj, fieldList)
      o.href = '/rest/v0/vms/' + obj.id
      out.push(o)
    }
  }
  return JSON.stringify(out, null, 2)
}

let body = handle() // warm-up
const ops = Number(n)
const start = process.hrtime.bigint()
for (let i = 0; i < ops; i++) body = handle()
const elapsed = Number(process.hrtime.bigint() - start)
console.log(JSON.stringify({
  client: `node complex-matcher ${version} + lodash pick`,
  ops,
  matched: JSON.parse(body).length,
  ns_per_op: Math.round(elapsed / ops),
}))
