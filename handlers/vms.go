package handlers

import (
	"net/http"
	"strings"

	"github.com/xorest/xorest/xo"
)

// listVMVDIs answers GET /rest/v0/{vms,vm-templates,vm-snapshots,vm-controllers}/<id>/vdis:
// the disks reached through the VM's VBDs ($VBDs, in their order), VDIs of
// a VM and VDI snapshots of a VM snapshot, as XO lists them. Empty CD
// drives have no disk; an ISO in a drive is listed. Each disk's href is in
// the collection of its type (/rest/v0/vdis/<id> or
// /rest/v0/vdi-snapshots/<id>).
func (s *server) listVMVDIs(c collection) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pools, err := s.pools()
		if err != nil {
			return err
		}
		vm, pool, err := pools.Object(r.Context(), c.kind, r.PathValue("id"))
		if err != nil {
			return err
		}
		vbds, _ := vm["$VBDs"].([]any)
		items := func(yield func(map[string]any) bool) {
			for _, id := range vbds {
				vbdID, _ := id.(string)
				vbd, err := pool.Object("VBD", vbdID)
				if err != nil {
					continue // removed since the VM was read
				}
				vdiID, _ := vbd["VDI"].(string)
				if vdiID == "" {
					continue
				}
				vdi, err := pool.Object("", vdiID)
				if err != nil || (vdi["type"] != "VDI" && vdi["type"] != "VDI-snapshot") {
					continue
				}
				if !yield(vdi) {
					return
				}
			}
		}
		return WriteCollection(w, r, queryOf(r), items, hrefByType)
	}
}

// hrefByType is the URL of an object in the collection of its type, as
// XO derives collection names: type.toLowerCase() + "s".
func hrefByType(obj xo.Object) string {
	typ, _ := obj["type"].(string)
	return BasePath + "/" + strings.ToLower(typ) + "s/" + idString(obj["id"])
}
