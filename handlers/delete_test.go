package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapisim"
)

// vmDisks returns the ids of the disks of a VM read through the REST API.
func (sf *simFixture) vmDisks(t testing.TB, collection, id string) []string {
	t.Helper()
	var disks []map[string]any
	sf.getJSON(t, BasePath+"/"+collection+"/"+id+"/vdis?fields=id,type", &disks)
	var ids []string
	for _, d := range disks {
		ids = append(ids, d["id"].(string))
	}
	return ids
}

func TestDeleteVM(t *testing.T) {
	tests := []struct {
		name, coll, vm string
		prepare        func(t *testing.T, sf *simFixture, id string)
		status         int
		inError        string
		gone           bool // the VM, its snapshots and disks are gone
	}{
		{name: "halted VM", coll: "vms", vm: "vm1", status: 204, gone: true},
		{name: "template", coll: "vm-templates", vm: "template0", status: 204, gone: true},
		{name: "snapshot", coll: "vm-snapshots", vm: "vm1 snapshot 0", status: 204, gone: true},
		{name: "running VM refused", coll: "vms", vm: "vm0", status: 409, inError: "must be halted"},
		{name: "blocked destroy", coll: "vms", vm: "vm5", status: 403, inError: "forbidden operation: destroy is blocked: protected",
			prepare: func(t *testing.T, sf *simFixture, id string) {
				sf.call(t, "VM.set_blocked_operations", sf.ref(t, "VM", id), map[string]string{"destroy": "protected"})
			}},
		{name: "XAPI refuses", coll: "vms", vm: "vm5", status: 403, inError: "OPERATION_BLOCKED",
			prepare: func(t *testing.T, sf *simFixture, _ string) {
				t.Cleanup(sf.sims[0].InjectFault(xapisim.FaultRule{Method: "VM.destroy", Fault: xapisim.NewFault("OPERATION_BLOCKED", "x", "no")}))
			}},
		{name: "default template refused", coll: "vm-templates", vm: "Debian Bookworm 12", status: 409, inError: "default templates"},
		{name: "VM of another collection", coll: "vm-templates", vm: "vm1", status: 404, inError: "no such VM-template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
			kindColl := tt.coll
			if tt.status == http.StatusNotFound {
				kindColl = "vms"
			}
			id := sf.idOf(t, kindColl, tt.vm)
			obj := sf.object(t, kindColl, id)
			disks := sf.vmDisks(t, kindColl, id)
			if tt.prepare != nil {
				tt.prepare(t, sf, id)
			}
			rec := sf.send(t, "DELETE", BasePath+"/"+tt.coll+"/"+id, "")
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.inError != "" {
				if body := errorOf(t, rec); !strings.Contains(body.Error, tt.inError) {
					t.Errorf("error %q does not contain %q", body.Error, tt.inError)
				}
			}
			wantStatus := http.StatusOK
			if tt.gone {
				wantStatus = http.StatusNotFound
			}
			if got := sf.get(t, BasePath+"/"+kindColl+"/"+id).Code; got != wantStatus {
				t.Errorf("GET the VM after DELETE: %d, want %d", got, wantStatus)
			}
			for _, d := range disks {
				coll := "vdis"
				if kindColl == "vm-snapshots" {
					coll = "vdi-snapshots"
				}
				if got := sf.get(t, BasePath+"/"+coll+"/"+d).Code; got != wantStatus {
					t.Errorf("GET disk %s after DELETE: %d, want %d", d, got, wantStatus)
				}
			}
			if snaps, _ := obj["snapshots"].([]any); tt.gone {
				for _, s := range snaps {
					if got := sf.get(t, BasePath+"/vm-snapshots/"+s.(string)).Code; got != http.StatusNotFound {
						t.Errorf("GET snapshot %s after DELETE: %d", s, got)
					}
				}
			}
		})
	}
}

func TestDeleteVMIncompleteNamesTask(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	id := sf.idOf(t, "vms", "vm1")
	t.Cleanup(sf.sims[0].InjectFault(xapisim.FaultRule{Method: "VDI.destroy", Fault: xapisim.NewFault("SR_BACKEND_FAILURE_1200", "", "busy"), Count: 1}))
	rec := sf.send(t, "DELETE", BasePath+"/vms/"+id, "")
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := errorOf(t, rec)
	task, _ := body.Data["task"].(string)
	if body.Data["code"] != "SR_BACKEND_FAILURE_1200" || task == "" || len(body.Data["notDeleted"].([]any)) != 1 {
		t.Fatalf("data %v", body.Data)
	}
	var got map[string]any
	sf.getJSON(t, BasePath+"/tasks/"+task, &got)
	result, _ := got["result"].(map[string]any)
	if got["status"] != "failure" || result["code"] != "XOREST_DESTROY_INCOMPLETE" {
		t.Errorf("task %v", got)
	}
	params, _ := result["params"].([]any)
	if len(params) != 3 || !strings.Contains(params[1].(string), "VM "+id) || !strings.HasPrefix(params[2].(string), "not deleted: VDI ") {
		t.Errorf("task params %q do not say what was deleted", params)
	}
	if got := sf.get(t, BasePath+"/vms/"+id).Code; got != http.StatusNotFound {
		t.Errorf("GET the VM: %d", got)
	}
}

func TestDeleteVDI(t *testing.T) {
	tests := []struct {
		name    string
		coll    string
		pick    func(t *testing.T, sf *simFixture) string
		status  int
		inError string
	}{
		{name: "detached VDI", coll: "vdis", status: 204, pick: func(t *testing.T, sf *simFixture) string {
			vm := sf.idOf(t, "vms", "vm1")
			disk := sf.vmDisks(t, "vms", vm)[0]
			// Detach it: destroy its VBD through XAPI.
			vbds := sf.call(t, "VDI.get_VBDs", sf.ref(t, "VDI", disk)).([]any)
			for _, vbd := range vbds {
				sf.call(t, "VBD.destroy", vbd)
			}
			return disk
		}},
		{name: "VDI snapshot", coll: "vdi-snapshots", status: 204, pick: func(t *testing.T, sf *simFixture) string {
			return sf.anyID(t, "vdi-snapshots")
		}},
		{name: "disk of a running VM", coll: "vdis", status: 409, inError: "in use", pick: func(t *testing.T, sf *simFixture) string {
			return sf.vmDisks(t, "vms", sf.idOf(t, "vms", "vm0"))[0]
		}},
		{name: "unknown", coll: "vdis", status: 404, pick: func(*testing.T, *simFixture) string {
			return "00000000-0000-0000-0000-000000000000"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
			id := tt.pick(t, sf)
			rec := sf.send(t, "DELETE", BasePath+"/"+tt.coll+"/"+id, "")
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			want := http.StatusNotFound
			if tt.inError != "" {
				body := errorOf(t, rec)
				if !strings.Contains(body.Error, tt.inError) || body.Data["code"] == nil {
					t.Errorf("error %q data %v", body.Error, body.Data)
				}
				want = http.StatusOK
			}
			if got := sf.get(t, BasePath+"/"+tt.coll+"/"+id).Code; got != want {
				t.Errorf("GET after DELETE: %d, want %d", got, want)
			}
		})
	}
}
