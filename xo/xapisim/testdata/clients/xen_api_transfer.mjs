// Drives the simulator's data plane with XO's own XAPI client, npm xen-api
// 4.7.6: getResource and putResource with XO's tasks, the empty probe PUT
// before a stream, and the 1 PiB Content-Length hack for streams of
// unknown length.
//
// Usage: node xen_api_transfer.mjs URL USER PASSWORD VM SR EMPTY_VDI SIZE
// Prints one JSON object; exits non-zero on any failure.
import { createClient } from 'xen-api'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'

const [url, user, password, vm, sr, emptyVdi, size] = process.argv.slice(2)

async function collect(body) {
  const chunks = []
  for await (const chunk of body) chunks.push(chunk)
  return Buffer.concat(chunks)
}

const sha = b => createHash('sha256').update(b).digest('hex')

const xapi = createClient({ url, auth: { user, password }, allowUnauthorized: true })
await xapi.connect()
const out = {}

// XVA export (zstd), then import of the bytes (a Buffer: no probe).
const exp = await xapi.getResource('/export/', { query: { ref: vm, use_compression: 'zstd' }, task: true })
const xva = await collect(exp.body)
await exp.task
out.xva_bytes = xva.length
const imported = await xapi.putResource(xva, '/import/', { query: { sr_id: sr }, task: true })
out.import_result = imported

// The same XVA as a stream with a known length: probe PUT, then the body.
const stream = Readable.from([xva])
stream.length = xva.length
out.import_stream_result = await xapi.putResource(stream, '/import/', { query: { sr_id: sr }, task: true })

// Raw export of the new VM's disk is checked by the Go side; here a VHD
// export of the empty VDI after a raw upload of unknown length (1 PiB
// Content-Length, VDI_IO_ERROR ignored by xen-api).
const data = Buffer.alloc(Number(size))
for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i)
await xapi.putResource(Readable.from([data]), '/import_raw_vdi/', { query: { vdi: emptyVdi, format: 'raw' }, task: true })
const raw = await xapi.getResource('/export_raw_vdi/', { query: { vdi: emptyVdi, format: 'raw' }, task: true })
const back = await collect(raw.body)
await raw.task
out.raw_roundtrip = sha(back) === sha(data)
const vhd = await xapi.getResource('/export_raw_vdi/', { query: { vdi: emptyVdi, format: 'vhd' }, task: true })
const vhdBytes = await collect(vhd.body)
await vhd.task
out.vhd_cookie = vhdBytes.subarray(0, 8).toString('latin1')

await xapi.disconnect()
console.log(JSON.stringify(out))
process.exit(0)
