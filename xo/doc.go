// Package xo is the Xen Orchestra object model over XAPI: it turns XAPI
// records into XO objects (the shapes of xo-server's
// xapi-object-to-xo.mjs, reference/xo-rest-api.md §B) and keeps a
// per-pool cache of them that is fresh on every request.
//
// # Objects
//
// An Object is a map[string]any ready for encoding/json and for
// filter.Node.Match: numbers are float64 (JavaScript's `+field`), XAPI
// datetimes are Unix seconds, links to other objects are uuids, missing
// values are omitted and nulls kept as XO does. Every object has id,
// type, uuid, $pool, $poolId and _xapiRef. Its kind is its type (VM,
// VM-template, VM-snapshot, VM-controller, host, pool, SR, VDI,
// VDI-snapshot, VDI-unmanaged, VBD, VIF, PIF, network, PBD, PCI, PGPU,
// SM, message), except that alarm messages (ALARM, BOND_STATUS_CHANGED,
// MULTIPATH_PERIODIC_ALERT) have the [NEW] REST API's alarm shape and
// kind "alarm", and XAPI tasks have XO's task shape (§C.1) and kind
// "task". Transforms read generic records (xapi.Client.GetAllRecords and
// event snapshots alike), so values are converted explicitly whether
// they arrive as strings (XML-RPC) or numbers.
//
// Known departures from XO: VM docker info is not parsed (the XML
// strings are passed through); vulnerabilities.xsa468 is only computed
// for non-Windows VMs (false); VMs do not track changes of the pool
// master's platform_version (isNestedVirtEnabled) until the next full
// load. GPU groups, vGPUs, VTPMs, USB devices, bonds and patches are read
// through links but are not objects of their own.
//
// # Freshness
//
// A Pool (one XAPI pool) or Pools (several) answers from memory, but
// every request first calls Fresh, which catches up with
// event.from(classes, token, 0), or loads everything with
// get_all_records (concurrently, after event.inject gave the token) when
// cold, after EVENTS_LOST, or after the session changed. Concurrent
// requests share one catch-up, and a request never joins one that
// started before it, so a read always sees the writes acknowledged
// before it. When a record changes, only the objects whose transform
// read it (a reverse-dependency index, by record field) are recomputed.
//
// A load keeps records only: the objects of a kind are built from the
// current records when a read first needs them (a collection, or a
// lookup by id that may fall in that kind), so a cold process answering
// /vms builds the VMs and neither the snapshots and templates (kinds of
// the same class, told apart without building them) nor the ~80,000 VBD,
// VDI and VIF objects of a large pool. From then on the kind is kept
// current like the others. The kinds a subscriber watches are built at
// every load, since only built objects produce changes. Records are
// indexed by uuid on the first lookup that needs it.
//
// # Watching
//
// Watch subscribes to XO-level changes ("update", "remove", "reset").
// Each pool runs one event.from long-poll loop while it has subscribers;
// the loop and request catch-ups apply batches through one function that
// only accepts a batch starting at the cache's current token, so no
// batch is applied twice or skipped, and both fan out what they apply.
// Subscribers have bounded queues; a slow one is dropped with
// ErrSlowSubscriber and never blocks the others.
package xo
