// Benchmark peer: XO's own raw -> dynamic VHD generation in Node, with npm
// vhd-lib's createReadableSparseStream (the function XO's VMDK/OVA import
// uses to turn a list of allocated fragments into a VHD stream).
//
// The raw file is scanned in 2 MiB VHD blocks; all-zero blocks are left
// unallocated (Node has no SEEK_DATA, so every block is read), the others
// are read again and fed to createReadableSparseStream as 2 MiB fragments.
// The stream is written to OUT (a file or /dev/null).
//
// Usage: node vhd_node.mjs IN.raw OUT.vhd N
// Prints one JSON line per run: {"client":..., "bytes_in":..., "ns":...}
import { createWriteStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { pipeline } from 'node:stream/promises'

const require = createRequire(import.meta.url)
// Deep import: vhd-lib's index also loads the remote-fs helpers, whose
// dependency @vates/diff the reachable registry does not serve.
const createReadableSparseStream = require('vhd-lib/createReadableSparseStream.js')
const version = require('vhd-lib/package.json').version

const BLOCK = 2 << 20
const [input, output, n] = process.argv.slice(2)

async function convert() {
  const size = (await stat(input)).size
  const fh = await open(input, 'r')
  try {
    const buf = Buffer.alloc(BLOCK)
    const zero = Buffer.alloc(BLOCK)
    const blocks = []
    for (let off = 0, i = 0; off < size; off += BLOCK, i++) {
      const len = Math.min(BLOCK, size - off)
      const { bytesRead } = await fh.read(buf, 0, len, off)
      if (bytesRead !== len) throw new Error(`short read at ${off}`)
      if (!buf.subarray(0, len).equals(zero.subarray(0, len))) blocks.push(i)
    }
    async function* fragments() {
      for (const i of blocks) {
        buf.fill(0)
        await fh.read(buf, 0, Math.min(BLOCK, size - i * BLOCK), i * BLOCK)
        // createReadableSparseStream copies the fragment before asking for
        // the next one, so the buffer can be reused.
        yield { logicalAddressBytes: i * BLOCK, data: buf }
      }
    }
    const stream = await createReadableSparseStream(size, BLOCK, blocks, fragments())
    await pipeline(stream, createWriteStream(output))
    return size
  } finally {
    await fh.close()
  }
}

for (let r = 0; r < Number(n); r++) {
  const start = process.hrtime.bigint()
  const bytes = await convert()
  const ns = Number(process.hrtime.bigint() - start)
  console.log(JSON.stringify({ client: `vhd-lib ${version}`, bytes_in: bytes, ns }))
}
