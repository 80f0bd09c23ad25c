// Uploads streams of unknown length with XO's own XAPI client, npm xen-api
// 4.7.6: Xapi#putResource sends a 1 PiB Content-Length (after an empty
// probe PUT for a 302) and closes the connection once the stream has been
// sent, then reports the task's result, ignoring VDI_IO_ERROR.
//
// Usage: node put_resource.mjs URL USER PASSWORD JOBS_JSON
// JOBS_JSON is a list of {name, file, path, query}. Each file is sent as a
// fs.ReadStream, which has no length. Prints one JSON object: per job, the
// value putResource resolved to (or the error it threw) and the error_info
// of the task, which the test creates so that it can read it afterwards.
import { createReadStream } from 'node:fs'
import { createClient } from 'xen-api'

const [url, user, password, jobsJSON] = process.argv.slice(2)
const xapi = createClient({ url, auth: { user, password }, allowUnauthorized: true })
await xapi.connect()

const out = {}
for (const { name, file, path, query } of JSON.parse(jobsJSON)) {
  const task = await xapi.call('task.create', 'putResource ' + name, '')
  const res = { stream_length: createReadStream(file).length ?? null }
  try {
    const value = await xapi.putResource(createReadStream(file), path, { query, task })
    res.value = value ?? null
  } catch (error) {
    res.error = [error.code ?? error.message, ...(error.params ?? [])]
  }
  const record = await xapi.call('task.get_record', task)
  res.status = record.status
  res.error_info = record.error_info
  await xapi.call('task.destroy', task)
  out[name] = res
}
console.log(JSON.stringify(out))
await xapi.disconnect()
