package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapisim"
)

// defaultTemplate returns the id of a default template that provisions
// a disk.
func (sf *simFixture) defaultTemplate(t testing.TB) string {
	t.Helper()
	id := sf.idOf(t, "vm-templates", "Debian Bookworm 12")
	if sf.objField(t, "vm-templates", id, "isDefaultTemplate") != true {
		t.Fatal("Debian Bookworm 12 is not a default template")
	}
	return id
}

func TestCreateVM(t *testing.T) {
	tests := []struct {
		name, target string
		body         func(t *testing.T, sf *simFixture) string
		check        func(t *testing.T, sf *simFixture, vm map[string]any)
	}{
		{name: "instantiate a custom template",
			target: "vm-templates/{template0}/actions/instantiate",
			body: func(*testing.T, *simFixture) string {
				return `{"name_label": "web", "name_description": "front", "cpus": 4, "memory": 2147483648, "boot": true}`
			},
			check: func(t *testing.T, sf *simFixture, vm map[string]any) {
				if vm["name_description"] != "front" || vm["power_state"] != "Running" {
					t.Errorf("description %v, power_state %v", vm["name_description"], vm["power_state"])
				}
				if cpus := vm["CPUs"].(map[string]any); cpus["number"] != 4.0 {
					t.Errorf("CPUs %v", cpus)
				}
				if mem := vm["memory"].(map[string]any); !sameJSON(mem["dynamic"], []any{2147483648.0, 2147483648.0}) {
					t.Errorf("memory %v", mem)
				}
				if disks := sf.vmDisks(t, "vms", vm["id"].(string)); len(disks) != 1 {
					t.Errorf("%d disks, want the template's one (cloned)", len(disks))
				}
			}},
		{name: "with disks and networks",
			target: "vm-templates/{template0}/actions/instantiate",
			body: func(t *testing.T, sf *simFixture) string {
				return `{"name_label": "web", "vdis": [{"name_label": "data", "size": 1073741824}, {"name_label": "logs", "size": 4096, "sr": "` +
					sf.idOf(t, "srs", "host0 local storage") + `"}], "vifs": [{"network": "` + sf.idOf(t, "networks", "network1") + `", "mac": "02:00:00:00:00:01"}]}`
			},
			check: func(t *testing.T, sf *simFixture, vm map[string]any) {
				var disks []map[string]any
				sf.getJSON(t, BasePath+"/vms/"+vm["id"].(string)+"/vdis?fields=name_label,size,$SR", &disks)
				got := map[string]any{}
				for _, d := range disks {
					got[d["name_label"].(string)] = d["size"]
				}
				if len(disks) != 3 || got["data"] != 1073741824.0 || got["logs"] != 4096.0 {
					t.Errorf("disks %v", disks)
				}
				var vifs []map[string]any
				sf.getJSON(t, BasePath+"/vifs?fields=MAC,$network&filter="+url.QueryEscape("$VM:"+vm["id"].(string)), &vifs)
				found := false
				for _, v := range vifs {
					found = found || (v["MAC"] == "02:00:00:00:00:01" && v["$network"] == sf.idOf(t, "networks", "network1"))
				}
				if !found {
					t.Errorf("VIFs %v", vifs)
				}
			}},
		{name: "pool create_vm from a default template",
			target: "pools/{pool}/actions/create_vm",
			body: func(t *testing.T, sf *simFixture) string {
				return `{"template": "` + sf.defaultTemplate(t) + `", "name_label": "web"}`
			},
			check: func(t *testing.T, sf *simFixture, vm map[string]any) {
				if vm["power_state"] != "Halted" {
					t.Errorf("power_state %v", vm["power_state"])
				}
				if disks := sf.vmDisks(t, "vms", vm["id"].(string)); len(disks) == 0 {
					t.Error("no disk provisioned")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
			target := strings.NewReplacer("{template0}", sf.idOf(t, "vm-templates", "template0"), "{pool}", sf.anyID(t, "pools")).Replace(tt.target)
			rec := sf.send(t, "POST", BasePath+"/"+target+"?sync", tt.body(t, sf))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var result map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &result); err != nil {
				t.Fatal(err)
			}
			id := result["id"].(string)
			if rec.Header().Get("Location") != BasePath+"/vms/"+id {
				t.Errorf("Location %q", rec.Header().Get("Location"))
			}
			vm := sf.object(t, "vms", id)
			if vm["name_label"] != "web" || vm["type"] != "VM" {
				t.Errorf("name_label %v type %v", vm["name_label"], vm["type"])
			}
			tt.check(t, sf, vm)
		})
	}
}

func TestCreateVMFailureLeavesNoVM(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	tpl := sf.idOf(t, "vm-templates", "template0")
	vdisBefore := len(sf.collectionIDs(t, "vdis"))
	t.Cleanup(sf.sims[0].InjectFault(xapisim.FaultRule{Method: "VM.set_memory_limits", Fault: xapisim.NewFault("MEMORY_CONSTRAINT_VIOLATION", "too big")}))
	rec := sf.send(t, "POST", BasePath+"/vm-templates/"+tpl+"/actions/instantiate?sync", `{"name_label": "doomed", "memory": 1}`)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if body := errorOf(t, rec); body.Data["code"] != "MEMORY_CONSTRAINT_VIOLATION" {
		t.Errorf("data %v", body.Data)
	}
	var vms []string
	sf.getJSON(t, BasePath+"/vms?filter="+url.QueryEscape("name_label:doomed"), &vms)
	if len(vms) != 0 {
		t.Errorf("half-created VMs remain: %v", vms)
	}
	if got := len(sf.collectionIDs(t, "vdis")); got != vdisBefore {
		t.Errorf("%d VDIs, %d before", got, vdisBefore)
	}
}

// collectionIDs lists the URLs of a collection.
func (sf *simFixture) collectionIDs(t testing.TB, coll string) []string {
	t.Helper()
	var urls []string
	sf.getJSON(t, BasePath+"/"+coll, &urls)
	return urls
}

func TestPoolEmergencyShutdown(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	var before []map[string]any
	sf.getJSON(t, BasePath+"/vms?fields=id,power_state", &before)
	rec := sf.send(t, "POST", BasePath+"/pools/"+sf.anyID(t, "pools")+"/actions/emergency_shutdown?sync", "")
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	for _, vm := range before {
		want := vm["power_state"]
		if want == "Running" || want == "Paused" {
			want = "Suspended"
		}
		if got := sf.objField(t, "vms", vm["id"].(string), "power_state"); got != want {
			t.Errorf("VM %s was %v, is %v, want %v", vm["id"], vm["power_state"], got, want)
		}
	}
	var hosts []map[string]any
	sf.getJSON(t, BasePath+"/hosts?fields=id,power_state,enabled", &hosts)
	for _, h := range hosts {
		if h["power_state"] != "Halted" {
			t.Errorf("host %v", h)
		}
	}
}

func TestCreateVMValidation(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	tpl := sf.idOf(t, "vm-templates", "template0")
	tests := []struct{ name, body, inError string }{
		{"nested required", `{"name_label": "x", "vdis": [{"name_label": "d"}]}`, "vdis[0].size: is required"},
		{"nested unknown object", `{"name_label": "x", "vifs": [{"network": "nope"}]}`, "vifs[0].network: no such network nope"},
		{"nested unknown member", `{"name_label": "x", "vifs": [{"network": "nope", "mtu": 9000}]}`, "vifs[0].mtu: unknown parameter"},
		{"not an array", `{"name_label": "x", "vdis": {}}`, "vdis: must be an array of objects"},
		{"element not an object", `{"name_label": "x", "vdis": [3]}`, "vdis[0]: must be an object"},
		{"negative size", `{"name_label": "x", "vdis": [{"name_label": "d", "size": -1}]}`, "vdis[0].size: must be a non-negative integer"},
		{"fractional memory", `{"name_label": "x", "memory": 1.5}`, "memory: must be a non-negative integer"},
	}
	vmsBefore := len(sf.collectionIDs(t, "vms"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sf.send(t, "POST", BasePath+"/vm-templates/"+tpl+"/actions/instantiate?sync", tt.body)
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if body := errorOf(t, rec); !strings.Contains(body.Error, tt.inError) {
				t.Errorf("error %q does not contain %q", body.Error, tt.inError)
			}
		})
	}
	if got := len(sf.collectionIDs(t, "vms")); got != vmsBefore {
		t.Errorf("%d VMs, %d before", got, vmsBefore)
	}
}
