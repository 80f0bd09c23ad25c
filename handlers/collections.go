package handlers

import (
	"net/http"
	"slices"

	"github.com/xorest/xorest/xo"
)

// collection is one collection of XO objects read from XAPI: a row of the
// collection table, from which its routes are generated.
type collection struct {
	name string // URL segment, e.g. "vms"
	kind string // xo kind of its objects, e.g. "VM"
	noun string // what one object is called in the documentation
	// related: the object has the messages, alarms and tasks
	// sub-collections (§A.9).
	related bool
	// vdis: the object has the vdis sub-collection (VM kinds).
	vdis bool
}

// collections returns the collection table: every collection of XO backed
// by XAPI, in the order of DefaultCollections. Tasks have routes of their
// own besides these (tasks.go).
func collections() []collection {
	return []collection{
		{name: "vms", kind: "VM", noun: "VM", related: true, vdis: true},
		{name: "vm-templates", kind: "VM-template", noun: "VM template", related: true, vdis: true},
		{name: "vm-snapshots", kind: "VM-snapshot", noun: "VM snapshot", related: true, vdis: true},
		{name: "vm-controllers", kind: "VM-controller", noun: "VM controller (control domain)", related: true, vdis: true},
		{name: "hosts", kind: "host", noun: "host", related: true},
		{name: "pools", kind: "pool", noun: "pool", related: true},
		{name: "srs", kind: "SR", noun: "SR (storage repository)", related: true},
		{name: "vdis", kind: "VDI", noun: "VDI (virtual disk)", related: true},
		{name: "vdi-snapshots", kind: "VDI-snapshot", noun: "VDI snapshot", related: true},
		{name: "vbds", kind: "VBD", noun: "VBD (VM-disk link)", related: true},
		{name: "vifs", kind: "VIF", noun: "VIF (virtual network interface)", related: true},
		{name: "pifs", kind: "PIF", noun: "PIF (physical network interface)", related: true},
		{name: "networks", kind: "network", noun: "network", related: true},
		{name: "pbds", kind: "PBD", noun: "PBD (host-SR link)", related: true},
		{name: "pcis", kind: "PCI", noun: "PCI device", related: true},
		{name: "pgpus", kind: "PGPU", noun: "physical GPU", related: true},
		{name: "sms", kind: "SM", noun: "SM (storage driver)", related: true},
		{name: "messages", kind: "message", noun: "message"},
		{name: "alarms", kind: "alarm", noun: "alarm"},
		{name: "tasks", kind: "task", noun: "task"},
	}
}

// watchParams are the query parameters of collection routes that can watch.
var watchParams = append(slices.Clone(collectionParams), "watch")

// collectionRoutes returns the routes of collection c: the list (with
// watch), one object, and its sub-collections.
func (s *server) collectionRoutes(c collection) []route {
	base := BasePath + "/" + c.name
	routes := []route{{
		method: "GET", pattern: base, handler: s.listCollection(c), tag: c.name,
		summary: "List the " + c.noun + "s (with ndjson&watch: stream their changes)",
		params:  watchParams,
		resp:    collectionResp("The " + c.noun + " URLs, or objects with the requested fields; with ndjson&watch, [\"update\", object] and [\"remove\", {href}] lines as they change"),
	}}
	if c.kind != "task" { // GET /tasks/{id} waits (tasks.go)
		routes = append(routes, route{
			method: "GET", pattern: base + "/{id}", handler: s.getObject(c), tag: c.name,
			summary: "Get one " + c.noun + " (id: uuid or XAPI ref)",
			params:  []string{"fields"},
			resp:    objectResp("The " + c.noun + ", with href"),
		})
	}
	if c.related {
		for _, sub := range relatedCollections() {
			routes = append(routes, route{
				method: "GET", pattern: base + "/{id}/" + sub.name, handler: s.listRelated(c, sub), tag: c.name,
				summary: "List the " + sub.noun + " of one " + c.noun,
				params:  collectionParams,
				resp:    collectionResp("The URLs of the " + sub.noun + ", or objects with the requested fields"),
			})
		}
	}
	if c.vdis {
		routes = append(routes, route{
			method: "GET", pattern: base + "/{id}/vdis", handler: s.listVMVDIs(c), tag: c.name,
			summary: "List the disks (VDIs or VDI snapshots) of one " + c.noun,
			params:  collectionParams,
			resp:    collectionResp("The URLs of the disks, or objects with the requested fields"),
		})
	}
	return routes
}

// objectResp documents a response holding one object.
func objectResp(description string) respDoc {
	return respDoc{description: description, schema: map[string]any{"type": "object"}}
}

// pools returns the configured pools, or a 503 when there are none.
func (s *server) pools() (*xo.Pools, error) {
	if s.cfg.Pools == nil {
		return nil, Unavailable("no XAPI pool configured", nil)
	}
	return s.cfg.Pools, nil
}

// listCollection answers GET /rest/v0/<collection>: the objects of every
// pool (caught up with XAPI first), or a watch stream with ?ndjson&watch.
func (s *server) listCollection(c collection) HandlerFunc {
	href := HrefIn(BasePath + "/" + c.name)
	st := &routeState{}
	return func(w http.ResponseWriter, r *http.Request) error {
		pools, err := s.pools()
		if err != nil {
			return err
		}
		q := queryOf(r)
		if q.Watch {
			return s.watch(w, r, q, pools, c.kind, href)
		}
		return writeTables(w, r, q, pools, c.kind, BasePath+"/"+c.name, st)
	}
}

// getObject answers GET /rest/v0/<collection>/<id>.
func (s *server) getObject(c collection) HandlerFunc {
	href := HrefIn(BasePath + "/" + c.name)
	return func(w http.ResponseWriter, r *http.Request) error {
		pools, err := s.pools()
		if err != nil {
			return err
		}
		obj, _, err := pools.Object(r.Context(), c.kind, r.PathValue("id"))
		if err != nil {
			return err
		}
		return WriteObject(w, queryOf(r).Fields, obj, href(obj))
	}
}

// related is a per-object sub-collection found by a link to the object
// (§A.9).
type related struct {
	name string // URL segment and collection of its objects
	kind string // xo kind of its objects
	noun string // plural, for the documentation
	// of reports whether obj belongs to the object whose uuid is uuid.
	of func(obj xo.Object, uuid string) bool
}

// relatedCollections returns the sub-collections every XAPI object has:
// its messages (alarms excepted, as in XO), its alarms and the tasks that
// apply to it.
func relatedCollections() []related {
	return []related{
		{name: "messages", kind: "message", noun: "messages", of: func(o xo.Object, uuid string) bool {
			return o["$object"] == uuid
		}},
		{name: "alarms", kind: "alarm", noun: "alarms", of: func(o xo.Object, uuid string) bool {
			target, _ := o["object"].(map[string]any)
			return target != nil && target["uuid"] == uuid
		}},
		{name: "tasks", kind: "task", noun: "tasks", of: func(o xo.Object, uuid string) bool {
			props, _ := o["properties"].(map[string]any)
			return props != nil && props["objectId"] == uuid
		}},
	}
}

// listRelated answers GET /rest/v0/<collection>/<id>/<sub>: the objects
// of sub's kind in the object's pool that refer to the object.
func (s *server) listRelated(c collection, sub related) HandlerFunc {
	href := HrefIn(BasePath + "/" + sub.name)
	return func(w http.ResponseWriter, r *http.Request) error {
		pools, err := s.pools()
		if err != nil {
			return err
		}
		obj, pool, err := pools.Object(r.Context(), c.kind, r.PathValue("id"))
		if err != nil {
			return err
		}
		uuid, _ := obj["uuid"].(string)
		items := func(yield func(map[string]any) bool) {
			for _, o := range pool.Objects(sub.kind) {
				if sub.of(o, uuid) && !yield(o) {
					return
				}
			}
		}
		return WriteCollection(w, r, queryOf(r), items, href)
	}
}
