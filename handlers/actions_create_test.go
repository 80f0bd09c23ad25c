package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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

func TestCreateVMCloudInit(t *testing.T) {
	mdir, mtype := peerTool(t, "mdir", "mtools"), peerTool(t, "mtype", "mtools")
	userData := "#cloud-config\nhostname: web\nusers:\n  - name: jérôme\n"
	networkConfig := "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"
	tests := []struct {
		name, target, body string
		network            bool
	}{
		{name: "instantiate with cloud_config and network_config", target: "vm-templates/{template0}/actions/instantiate",
			body: `{"name_label": "web", "cloud_config": ` + jsonString(userData) + `, "network_config": ` + jsonString(networkConfig) + `}`, network: true},
		{name: "create_vm with xo-server's cloudConfig", target: "pools/{pool}/actions/create_vm",
			body: `{"template": "{default}", "name_label": "web", "boot": true, "cloudConfig": ` + jsonString(userData) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
			r := strings.NewReplacer("{template0}", sf.idOf(t, "vm-templates", "template0"), "{pool}", sf.anyID(t, "pools"), "{default}", sf.defaultTemplate(t))
			rec := sf.send(t, "POST", BasePath+"/"+r.Replace(tt.target)+"?sync", r.Replace(tt.body))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var result map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &result); err != nil {
				t.Fatal(err)
			}
			vmID := result["id"].(string)
			var disks []map[string]any
			sf.getJSON(t, BasePath+"/vms/"+vmID+"/vdis?fields=id,name_label,size,$SR", &disks)
			var drive, other map[string]any
			for _, d := range disks {
				if d["name_label"] == configDriveName {
					drive = d
				} else if other == nil {
					other = d
				}
			}
			if drive == nil || other == nil {
				t.Fatalf("disks %v: want the template's and the config drive", disks)
			}
			if drive["$SR"] != other["$SR"] {
				t.Errorf("config drive on SR %v, the VM's first disk on %v", drive["$SR"], other["$SR"])
			}
			var vbds []map[string]any
			sf.getJSON(t, BasePath+"/vbds?fields=VDI,is_cd_drive,read_only&filter="+url.QueryEscape("VDI:"+drive["id"].(string)), &vbds)
			if len(vbds) != 1 || vbds[0]["is_cd_drive"] != false || vbds[0]["read_only"] != false {
				t.Errorf("config drive VBDs %v: want one read-write disk", vbds)
			}

			img := make([]byte, int64(drive["size"].(float64)))
			if _, err := sf.sims[0].ReadVDIAt(string(sf.ref(t, "VDI", drive["id"].(string))), img, 0); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "drive.img")
			if err := os.WriteFile(path, img, 0o600); err != nil {
				t.Fatal(err)
			}
			files := map[string]string{"user-data": userData, "meta-data": "instance-id: " + vmID + "\n"}
			if tt.network {
				files["network-config"] = networkConfig
			}
			for name, want := range files {
				if got := runPeer(t, mtype, "-i", path, "::"+name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			list := runPeer(t, mdir, "-i", path, "-b", "::")
			if strings.Contains(list, "network-config") != tt.network {
				t.Errorf("root directory:\n%s", list)
			}
			if label := runPeer(t, peerTool(t, "mlabel", "mtools"), "-s", "-i", path, "::"); !strings.Contains(label, "cidata") {
				t.Errorf("label: %q", label)
			}
		})
	}
}

func TestCreateVMCloudInitFailure(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	tpl := sf.idOf(t, "vm-templates", "template0")
	vdisBefore := len(sf.collectionIDs(t, "vdis"))
	t.Cleanup(sf.sims[0].InjectFault(xapisim.FaultRule{Method: "VBD.create", Fault: xapisim.NewFault("VM_BAD_POWER_STATE", "x", "halted", "running")}))
	rec := sf.send(t, "POST", BasePath+"/vm-templates/"+tpl+"/actions/instantiate?sync", `{"name_label": "doomed", "cloud_config": "#cloud-config\n"}`)
	// The config drive's VBD is the only VBD.create call of this request.
	if rec.Code != http.StatusConflict {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if body := errorOf(t, rec); body.Data["code"] != "VM_BAD_POWER_STATE" {
		t.Errorf("error %v", body)
	}
	var vms []string
	sf.getJSON(t, BasePath+"/vms?filter="+url.QueryEscape("name_label:doomed"), &vms)
	if len(vms) != 0 {
		t.Errorf("half-created VMs remain: %v", vms)
	}
	if got := len(sf.collectionIDs(t, "vdis")); got != vdisBefore {
		t.Errorf("%d VDIs, %d before: the config drive or the VM's disks remain", got, vdisBefore)
	}
}

func TestCreateVMCloudInitValidation(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	tpl := sf.idOf(t, "vm-templates", "template0")
	tests := []struct{ name, body, inError string }{
		{"both spellings", `{"name_label": "x", "cloud_config": "a", "cloudConfig": "b"}`, "cloudConfig: conflicts with cloud_config"},
		{"network without user-data", `{"name_label": "x", "network_config": "version: 2"}`, "network_config: needs cloud_config"},
		{"not a string", `{"name_label": "x", "cloud_config": {"a": 1}}`, "cloud_config: must be a string"},
	}
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
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// peerTool returns the path of a peer program, failing the test with the
// Debian package to install when it is missing.
func peerTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed to check config drives: apt-get install -y %s", name, pkg)
	}
	return p
}

// runPeer runs a peer program and returns its standard output, failing the
// test on a non-zero exit.
func runPeer(t testing.TB, name string, args ...string) string {
	t.Helper()
	var stderr strings.Builder
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
