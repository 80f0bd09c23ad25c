// Drives a pool whose member holds the disks on its local SR with XO's own
// XAPI client, npm xen-api 4.7.6, connected to the master: every transfer
// is redirected (302) by the master to the member's TLS listener.
// getResource retries on the 302 at the Location; putResource of a stream
// sends an empty probe PUT (without task_id), then the stream to the
// Location with the original task_id.
//
// Usage: node xen_api_redirect.mjs URL USER PASSWORD VM VDI SR TARGET_VDI
// Prints one JSON object; exits non-zero on any failure.
import { createClient } from 'xen-api'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'

const [url, user, password, vm, vdi, sr, target] = process.argv.slice(2)

async function collect(body) {
  const chunks = []
  for await (const chunk of body) chunks.push(chunk)
  return Buffer.concat(chunks)
}

const sha = b => createHash('sha256').update(b).digest('hex')

function sized(buf) {
  const stream = Readable.from([buf])
  stream.length = buf.length
  return stream
}

const xapi = createClient({ url, auth: { user, password }, allowUnauthorized: true })
await xapi.connect()
const out = {}

const raw = await xapi.getResource('/export_raw_vdi/', { query: { vdi, format: 'raw' }, task: true })
const rawBytes = await collect(raw.body)
await raw.task
out.raw_bytes = rawBytes.length
out.raw_sha = sha(rawBytes)

const exp = await xapi.getResource('/export/', { query: { ref: vm }, task: true })
const xva = await collect(exp.body)
await exp.task
out.xva_bytes = xva.length

out.import_stream = await xapi.putResource(sized(xva), '/import/', { query: { sr_id: sr }, task: true })

out.put_raw = await xapi.putResource(sized(rawBytes), '/import_raw_vdi/', { query: { vdi: target, format: 'raw' }, task: true })

const back = await xapi.getResource('/export_raw_vdi/', { query: { vdi: target, format: 'raw' }, task: true })
out.back_sha = sha(await collect(back.body))
await back.task

console.log(JSON.stringify(out))
await xapi.disconnect()
