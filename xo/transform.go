package xo

import (
	"cmp"
	"slices"
	"strings"

	"github.com/xorest/xorest/xo/xapi"
)

// Object is an XO object: a JSON-ready map with XO's field names and value
// types (strings, float64 numbers, bools, nil, []any, map[string]any),
// as xo-server's xapi-object-to-xo.mjs builds it. It can be passed as it
// is to encoding/json and to filter.Node.Match. Objects handed out by this
// package are shared and must be treated as read-only.
type Object = map[string]any

// record is one cached XAPI record.
type record struct {
	class  string         // canonical class name, e.g. "VM", "host"
	fields map[string]any // as decoded by xapi.Client
}

// store is the record side of a pool cache, read by transforms.
type store struct {
	recs     map[xapi.Ref]*record
	byUUID   map[string]xapi.Ref // nil until indexUUIDs
	poolRef  xapi.Ref
	poolUUID string
}

// indexUUIDs builds byUUID if it is not built. A load leaves it out: a
// cold request for a collection, and the transforms of most classes,
// never look a record up by uuid. Once built, apply keeps it current.
func (s *store) indexUUIDs() {
	if s.byUUID != nil {
		return
	}
	s.byUUID = make(map[string]xapi.Ref, len(s.recs))
	for r, rec := range s.recs {
		if u := str(rec.fields["uuid"]); u != "" {
			s.byUUID[u] = r
		}
	}
}

// usesUUIDs reports whether the transform of class looks records up by
// uuid (tctx.byUUID), so that build indexes them first.
func usesUUIDs(class string) bool {
	switch class {
	case "message", "VDI", "task":
		return true
	}
	return false
}

// depKey names what a transform read: a field of a record, or with field
// "" the record's existence (and its immutable uuid).
type depKey struct {
	ref   xapi.Ref
	field string
}

// tctx is the context of one transform: the records it may read and the
// dependencies it collects while reading them.
type tctx struct {
	s    *store
	self xapi.Ref
	deps []depKey
	memo *memo // may be nil
}

// finish returns the dependencies collected, sorted and without
// duplicates, in a slice of their own; it resets c.deps for reuse.
func (c *tctx) finish() []depKey {
	slices.SortFunc(c.deps, func(a, b depKey) int {
		return cmp.Or(cmp.Compare(a.ref, b.ref), cmp.Compare(a.field, b.field))
	})
	out := slices.Clone(slices.Compact(c.deps))
	c.deps = c.deps[:0]
	return out
}

// memo caches pure parses shared by many records (VMs made from one
// template carry the same recommendations document). One memo serves one
// goroutine.
type memo struct {
	firmware map[[2]string]bool
}

// firmwareSupported is isFirmwareSupported, memoized.
func (c *tctx) firmwareSupported(recommendations, firmware string) bool {
	if c.memo == nil {
		return isFirmwareSupported(recommendations, firmware)
	}
	k := [2]string{recommendations, firmware}
	v, ok := c.memo.firmware[k]
	if !ok {
		if c.memo.firmware == nil {
			c.memo.firmware = make(map[[2]string]bool)
		}
		v = isFirmwareSupported(recommendations, firmware)
		c.memo.firmware[k] = v
	}
	return v
}

// get returns the record behind r (nil if r is null or unknown) and
// records a dependency on its existence and on the given fields.
func (c *tctx) get(r xapi.Ref, fields ...string) map[string]any {
	if r.IsNull() {
		return nil
	}
	c.deps = append(c.deps, depKey{r, ""})
	for _, f := range fields {
		c.deps = append(c.deps, depKey{r, f})
	}
	if rec := c.s.recs[r]; rec != nil {
		return rec.fields
	}
	return nil
}

// byUUID returns the ref of the record with that uuid and records a
// dependency on its existence (a pseudo-ref "uuid:<uuid>").
func (c *tctx) byUUID(uuid string) xapi.Ref {
	if c.s.byUUID == nil {
		panic("xo: transform looks up a uuid but usesUUIDs does not list its class")
	}
	c.deps = append(c.deps, depKey{xapi.Ref("uuid:" + uuid), ""})
	return c.s.byUUID[uuid]
}

// link is XO's link(obj, prop) for a single ref: the uuid of the target,
// or nil (omitted) for a null or dangling ref.
func (c *tctx) link(v any) any {
	rec := c.get(ref(v))
	if rec == nil {
		return nil
	}
	return rec["uuid"]
}

// links is XO's link(obj, prop) for a set of refs: the targets' uuids,
// nil (JSON null) in place of dangling refs. A missing set gives [].
func (c *tctx) links(v any) []any {
	l := list(v)
	out := make([]any, len(l))
	for i, r := range l {
		if rec := c.get(ref(r)); rec != nil {
			out[i] = rec["uuid"]
		}
	}
	return out
}

// optional sets o[k] = v unless v is nil (JavaScript undefined: omitted).
func optional(o Object, k string, v any) {
	if v != nil {
		o[k] = v
	}
}

// transformFunc builds the class-specific part of an XO object.
type transformFunc func(c *tctx, r map[string]any) Object

// transforms maps a canonical XAPI class name to its transform. Classes
// without one (metrics, guest metrics, …) are only read through links.
func transformOf(class string) transformFunc {
	switch class {
	case "pool":
		return transformPool
	case "host":
		return transformHost
	case "VM":
		return transformVM
	case "SR":
		return transformSR
	case "VDI":
		return transformVDI
	case "VBD":
		return transformVBD
	case "VIF":
		return transformVIF
	case "PIF":
		return transformPIF
	case "network":
		return transformNetwork
	case "PBD":
		return transformPBD
	case "PCI":
		return transformPCI
	case "PGPU":
		return transformPGPU
	case "SM":
		return transformSM
	case "message":
		return transformMessage
	case "task":
		return transformTask
	}
	return nil
}

// transform turns the record at ref into its XO object, or nil when the
// class has no XO object. It adds the common fields as xapiObjectToXo
// does: id (the uuid unless the transform set it), type (the class name
// unless set), uuid, $pool, $poolId and _xapiRef. Tasks get XO's task
// shape instead (see transformTask), without the common fields.
func (c *tctx) transform(class string, r map[string]any) Object {
	f := transformOf(class)
	if f == nil {
		return nil
	}
	o := f(c, r)
	if o == nil {
		return nil
	}
	if class == "task" {
		return o
	}
	if _, ok := o["id"]; !ok {
		id := str(r["uuid"])
		if id == "" {
			id = string(c.self)
		}
		o["id"] = id
	}
	if _, ok := o["type"]; !ok {
		o["type"] = class
	}
	if u, ok := r["uuid"]; ok {
		if _, set := o["uuid"]; !set {
			o["uuid"] = u
		}
	}
	o["$pool"] = c.s.poolUUID
	o["$poolId"] = c.s.poolUUID
	o["_xapiRef"] = string(c.self)
	return o
}

// objectType returns the XO type of the record without building the
// object (the type of the object whose uuid an alarm points to), and
// records the dependencies that decide it.
func (c *tctx) objectType(r xapi.Ref) string {
	rec := c.s.recs[r]
	if rec == nil {
		return ""
	}
	switch rec.class {
	case "VM":
		f := c.get(r, "is_control_domain", "is_a_snapshot", "snapshot_of", "is_a_template")
		return vmType(c, f)
	case "VDI":
		f := c.get(r, "is_a_snapshot", "snapshot_of", "managed")
		return vdiType(c, f)
	case "task", "VM_metrics", "VM_guest_metrics", "host_metrics", "PIF_metrics":
		return ""
	}
	if transformOf(rec.class) == nil {
		return ""
	}
	return rec.class
}

// recordKind returns the kind of the object a record of class makes (see
// kindOf), without building it, and records the dependencies that decide
// it: those of vmType and vdiType; the message name decides between
// message and alarm.
func (c *tctx) recordKind(class string, r map[string]any) string {
	switch class {
	case "VM":
		return vmType(c, r)
	case "VDI":
		return vdiType(c, r)
	case "message":
		if isAlarm(str(r["name"])) {
			return "alarm"
		}
		return "message"
	}
	return class
}

// collectionOfType is XO's REST collection name of an object type, as
// alarms build their hrefs: the type lower-cased plus "s".
func collectionOfType(t string) string {
	return strings.ToLower(t) + "s"
}
