// Benchmark peer: VM.get_all_records through npm xen-api 4.7.6, the XAPI
// client Xen Orchestra uses. Usage: node getall_node.mjs URL USER PASSWORD N TRANSPORT
// Prints one JSON line: {"client":"xen-api","calls":N,"records":R,"ns_per_call":T,"peak_rss_bytes":B}
import { readFileSync } from 'node:fs'
import { createClient } from 'xen-api'

const [url, user, password, n, transport] = process.argv.slice(2)
const calls = Number(n)
const xapi = createClient({ url, auth: { user, password }, transport, allowUnauthorized: true, watchEvents: false })
await xapi.connect()

let records = 0
// One warm-up call, as the Go side does.
records = Object.keys(await xapi.call('VM.get_all_records')).length
const start = process.hrtime.bigint()
for (let i = 0; i < calls; i++) {
  records = Object.keys(await xapi.call('VM.get_all_records')).length
}
const elapsed = Number(process.hrtime.bigint() - start)
await xapi.disconnect()

const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
console.log(JSON.stringify({
  client: 'xen-api ' + transport,
  calls,
  records,
  ns_per_call: Math.round(elapsed / calls),
  peak_rss_bytes: Number(hwm[1]) * 1024,
}))
process.exit(0)
