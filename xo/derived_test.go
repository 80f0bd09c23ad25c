package xo_test

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// TestDerived checks derived fields of every object against the XAPI
// records fetched independently through the client: common fields,
// links (ref → uuid, in order), converted numbers, and VM rules.
func TestDerived(t *testing.T) {
	srv, p := newPool(t, xapisim.Default())
	c := newClient(t, srv)
	ctx := t.Context()
	recs := map[xapi.Ref]map[string]any{}
	for _, class := range []string{"pool", "host", "VM", "VBD", "VDI", "SR", "PBD", "VIF", "PIF", "network", "PCI", "PGPU", "SM", "message", "task", "VM_metrics"} {
		rs, err := c.GetAllRecords(ctx, class)
		if err != nil {
			t.Fatal(err)
		}
		for r, f := range rs {
			recs[r] = f
		}
	}
	uuidOf := func(v any) any {
		if r, ok := recs[xapi.Ref(v.(string))]; ok {
			return r["uuid"]
		}
		return nil
	}
	uuids := func(v any) []any {
		out := []any{}
		for _, r := range v.([]any) {
			out = append(out, uuidOf(r))
		}
		return out
	}
	number := func(v any) float64 {
		f, err := strconv.ParseFloat(v.(string), 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// links: kind → XO field → XAPI field (a ref or a set of refs).
	links := map[string]map[string]string{
		"VM":      {"$VBDs": "VBDs", "VIFs": "VIFs", "snapshots": "snapshots"},
		"VBD":     {"VM": "VM", "VDI": "VDI"},
		"VDI":     {"$SR": "SR", "$VBDs": "VBDs", "snapshots": "snapshots"},
		"SR":      {"$PBDs": "PBDs", "VDIs": "VDIs"},
		"PBD":     {"host": "host", "SR": "SR"},
		"VIF":     {"$VM": "VM", "$network": "network"},
		"PIF":     {"$host": "host", "$network": "network"},
		"network": {"PIFs": "PIFs", "VIFs": "VIFs"},
		"host":    {"$PBDs": "PBDs", "PIFs": "PIFs", "PCIs": "PCIs", "PGPUs": "PGPUs", "residentVms": "resident_VMs"},
		"pool":    {"master": "master", "default_SR": "default_SR"},
		"PCI":     {"$host": "host"},
		"PGPU":    {"$host": "host", "pci": "PCI"},
	}
	ids := map[any]bool{}
	for _, kind := range xo.Kinds() {
		for _, o := range p.Objects(kind) {
			ids[o["uuid"]] = true
		}
	}
	for _, kind := range xo.Kinds() {
		if kind == "task" {
			continue
		}
		for _, o := range p.Objects(kind) {
			name := fmt.Sprintf("%s/%v", kind, o["name_label"])
			rec := recs[xapi.Ref(o["_xapiRef"].(string))]
			if rec == nil {
				t.Errorf("%s: no record %v", name, o["_xapiRef"])
				continue
			}
			if o["uuid"] != rec["uuid"] || o["$pool"] != p.UUID() || o["$poolId"] != p.UUID() {
				t.Errorf("%s: uuid %v $pool %v $poolId %v", name, o["uuid"], o["$pool"], o["$poolId"])
			}
			if kind != "VM-template" && o["id"] != rec["uuid"] {
				t.Errorf("%s: id %v, want the uuid %v", name, o["id"], rec["uuid"])
			}
			for xoField, xapiField := range links[kind] {
				var want any
				switch v := rec[xapiField].(type) {
				case []any:
					want = uuids(v)
				case string:
					want = uuidOf(v)
				}
				if got := o[xoField]; !reflect.DeepEqual(got, want) {
					t.Errorf("%s: %s = %v, want %v (from %s)", name, xoField, got, want, xapiField)
				}
				for _, id := range anySlice(o[xoField]) {
					if !ids[id] {
						t.Errorf("%s: %s names %v, which is no object", name, xoField, id)
					}
				}
			}
			switch kind {
			case "VM", "VM-snapshot", "VM-template", "VM-controller":
				if o["power_state"] != rec["power_state"] || o["name_label"] != rec["name_label"] {
					t.Errorf("%s: power_state %v name_label %v", name, o["power_state"], o["name_label"])
				}
				cpus := o["CPUs"].(map[string]any)
				if cpus["max"] != number(rec["VCPUs_max"]) {
					t.Errorf("%s: CPUs.max %v, VCPUs_max %v", name, cpus["max"], rec["VCPUs_max"])
				}
				mem := o["memory"].(map[string]any)
				wantStatic := []any{number(rec["memory_static_min"]), number(rec["memory_static_max"])}
				if !reflect.DeepEqual(mem["static"], wantStatic) {
					t.Errorf("%s: memory.static %v, want %v", name, mem["static"], wantStatic)
				}
				if host := uuidOf(rec["resident_on"]); host != nil && o["$container"] != host {
					t.Errorf("%s: $container %v, want its host %v", name, o["$container"], host)
				}
				if rec["resident_on"] == "OpaqueRef:NULL" && o["$container"] != p.UUID() {
					t.Errorf("%s: $container %v, want the pool (all SRs are shared or local to nothing)", name, o["$container"])
				}
				wantType := "VM"
				switch {
				case rec["is_control_domain"] == true:
					wantType = "VM-controller"
				case rec["is_a_snapshot"] == true:
					wantType = "VM-snapshot"
				case rec["is_a_template"] == true:
					wantType = "VM-template"
				}
				if o["type"] != wantType {
					t.Errorf("%s: type %v, want %v", name, o["type"], wantType)
				}
				if m := recs[xapi.Ref(rec["metrics"].(string))]; m != nil && o["installTime"] == nil {
					t.Errorf("%s: no installTime although metrics exist", name)
				}
			case "SR":
				if o["size"] != number(rec["physical_size"]) || o["usage"] != number(rec["virtual_allocation"]) {
					t.Errorf("%s: size %v usage %v", name, o["size"], o["usage"])
				}
			case "VDI", "VDI-snapshot":
				if o["size"] != number(rec["virtual_size"]) {
					t.Errorf("%s: size %v", name, o["size"])
				}
			case "message":
				if o["$object"] != rec["obj_uuid"] || o["name"] != rec["name"] {
					t.Errorf("%s: $object %v name %v", name, o["$object"], o["name"])
				}
			case "alarm":
				obj := o["object"].(map[string]any)
				if obj["uuid"] != rec["obj_uuid"] || !ids[obj["uuid"]] {
					t.Errorf("%s: object %v", name, obj)
				}
			}
		}
	}
}

// anySlice returns v's elements when it is a slice, v itself otherwise.
func anySlice(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	}
	return []any{v}
}
