// Drives the simulator with XO's own XAPI client, npm xen-api 4.7.6.
//
// Usage: node xen_api_check.mjs URL USER PASSWORD TRANSPORT
// TRANSPORT is json-rpc, xml-rpc or auto. Prints one JSON object with what
// it saw; exits non-zero on any failure. With watchEvents on (the default)
// connect() runs XO's full start-up: login, pool.get_all_records,
// system.listMethods, event.inject, get_all_records of every class, then
// the event.from loop that also resolves callAsync's tasks.
import { createClient } from 'xen-api'

const [url, user, password, transport] = process.argv.slice(2)

function assert(cond, msg) {
  if (!cond) throw new Error('assertion failed: ' + msg)
}

async function expectError(code, promise) {
  try {
    await promise
  } catch (error) {
    assert(error.code === code, `expected ${code}, got ${error.code} ${error.message}`)
    return [error.code, ...(error.params ?? [])]
  }
  throw new Error(`expected ${code}, call succeeded`)
}

async function waitFor(what, cond, ms = 10e3) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

const out = {}
const bad = createClient({ url, auth: { user, password: password + 'x' }, transport, allowUnauthorized: true, watchEvents: false })
out.bad_login = await expectError('SESSION_AUTHENTICATION_FAILED', bad.connect())

const xapi = createClient({ url, auth: { user, password }, transport, allowUnauthorized: true })
await xapi.connect()
await xapi.objectsFetched

const counts = {}
for (const obj of Object.values(xapi.objects.all)) {
  counts[obj.$type] = (counts[obj.$type] ?? 0) + 1
}
out.counts = counts

const vm = Object.values(xapi.objects.all).find(
  o => o.$type === 'VM' && o.power_state === 'Halted' && !o.is_a_template && !o.is_control_domain
)
assert(vm !== undefined, 'no halted VM')
out.vm = vm.$ref
out.bad_power_state = await expectError('VM_BAD_POWER_STATE', xapi.call('VM.clean_shutdown', vm.$ref))

// A change made through the API comes back through the event loop.
await xapi.call('VM.set_name_label', vm.$ref, 'renamed by xen-api')
await waitFor('the renamed VM in the cache', () => xapi.getObjectByRef(vm.$ref).name_label === 'renamed by xen-api')
out.event_mod = xapi.getObjectByRef(vm.$ref).name_label

// callAsync: Async.VM.snapshot, watched through task events, then task.destroy.
const snapRef = await xapi.callAsync('VM.snapshot', vm.$ref, 'snap by xen-api')
out.async_result = snapRef
await waitFor('the snapshot in the cache', () => xapi.getObjectByRef(snapRef, undefined) !== undefined)
const snap = xapi.getObjectByRef(snapRef)
out.snapshot_of = snap.snapshot_of
out.async_fail = await expectError('VM_BAD_POWER_STATE', xapi.callAsync('VM.clean_shutdown', vm.$ref))

await xapi.disconnect()
console.log(JSON.stringify(out))
process.exit(0)
