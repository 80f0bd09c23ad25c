package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapisim"
)

func TestActionDiscovery(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	var urls []string
	sf.getJSON(t, BasePath+"/vms/_/actions", &urls)
	for _, a := range []string{"start", "clean_shutdown", "clean_reboot", "hard_shutdown", "hard_reboot", "pause", "unpause", "suspend", "resume", "snapshot", "clone", "migrate"} {
		if !slices.Contains(urls, BasePath+"/vms/_/actions/"+a) {
			t.Errorf("%s missing from %q", a, urls)
		}
	}
	tests := []struct {
		path string
		want string
	}{
		{"/vms/_/actions/snapshot", `{"params":{"name_label":{"description":"The snapshot's name (default: the VM's)","optional":true,"type":"string"}}}`},
		{"/vms/_/actions/clean_reboot", `{}`},
		{"/vdis/_/actions/migrate", `{"params":{"srId":{"description":"The destination SR","type":"string"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var got any
			sf.getJSON(t, BasePath+tt.path, &got)
			if b, _ := json.Marshal(got); string(b) != tt.want {
				t.Errorf("got %s, want %s", b, tt.want)
			}
		})
	}
	if rec := sf.get(t, BasePath+"/vms/_/actions/fly"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown action: %d", rec.Code)
	}
	var objs []map[string]any
	sf.getJSON(t, BasePath+"/srs/_/actions?fields=id", &objs)
	if len(objs) != 2 || objs[0]["id"] != "scan" || objs[0]["href"] != BasePath+"/srs/_/actions/scan" || objs[1]["id"] != "reclaim_space" {
		t.Errorf("srs actions with fields: %v", objs)
	}
}

// objField reads one field of an object through the REST API.
func (sf *simFixture) objField(t testing.TB, coll, id, field string) any {
	t.Helper()
	return sf.object(t, coll, id)[field]
}

// hostID returns the id of the host named name.
func (sf *simFixture) hostID(t testing.TB, name string) string {
	t.Helper()
	return sf.idOf(t, "hosts", name)
}

func TestActionsSync(t *testing.T) {
	type check func(t *testing.T, sf *simFixture, id string, result map[string]any)
	powerState := func(want string) check {
		return func(t *testing.T, sf *simFixture, id string, _ map[string]any) {
			if got := sf.objField(t, "vms", id, "power_state"); got != want {
				t.Errorf("power_state %v, want %s", got, want)
			}
		}
	}
	tests := []struct {
		name, coll string
		pick       func(t *testing.T, sf *simFixture) string
		action     string
		body       func(t *testing.T, sf *simFixture) string
		status     int
		check      check
	}{
		{name: "start", coll: "vms", pick: vmNamed("vm1"), action: "start", status: 204, check: powerState("Running")},
		{name: "start on a host", coll: "vms", pick: vmNamed("vm1"), action: "start", status: 204,
			body: func(t *testing.T, sf *simFixture) string { return `{"hostId": "` + sf.hostID(t, "host1") + `"}` },
			check: func(t *testing.T, sf *simFixture, id string, _ map[string]any) {
				if got := sf.objField(t, "vms", id, "$container"); got != sf.hostID(t, "host1") {
					t.Errorf("$container %v, want host1", got)
				}
			}},
		{name: "clean_shutdown", coll: "vms", pick: vmNamed("vm0"), action: "clean_shutdown", status: 204, check: powerState("Halted")},
		{name: "clean_reboot", coll: "vms", pick: vmNamed("vm0"), action: "clean_reboot", status: 204, check: powerState("Running")},
		{name: "hard_shutdown", coll: "vms", pick: vmNamed("vm2"), action: "hard_shutdown", status: 204, check: powerState("Halted")},
		{name: "hard_reboot", coll: "vms", pick: vmNamed("vm0"), action: "hard_reboot", status: 204, check: powerState("Running")},
		{name: "pause", coll: "vms", pick: vmNamed("vm0"), action: "pause", status: 204, check: powerState("Paused")},
		{name: "unpause", coll: "vms", pick: vmNamed("vm4"), action: "unpause", status: 204, check: powerState("Running")},
		{name: "suspend", coll: "vms", pick: vmNamed("vm0"), action: "suspend", status: 204, check: powerState("Suspended")},
		{name: "resume", coll: "vms", pick: vmNamed("vm3"), action: "resume", status: 204, check: powerState("Running")},
		{name: "migrate", coll: "vms", pick: vmNamed("vm0"), action: "migrate", status: 204,
			body: func(t *testing.T, sf *simFixture) string { return `{"hostId": "` + sf.hostID(t, "host1") + `"}` },
			check: func(t *testing.T, sf *simFixture, id string, _ map[string]any) {
				if got := sf.objField(t, "vms", id, "$container"); got != sf.hostID(t, "host1") {
					t.Errorf("$container %v, want host1", got)
				}
			}},
		{name: "snapshot", coll: "vms", pick: vmNamed("vm0"), action: "snapshot", status: 200,
			body: func(*testing.T, *simFixture) string { return `{"name_label": "before upgrade"}` },
			check: func(t *testing.T, sf *simFixture, id string, result map[string]any) {
				snap := sf.object(t, "vm-snapshots", result["id"].(string))
				if snap["name_label"] != "before upgrade" || snap["$snapshot_of"] != id {
					t.Errorf("snapshot %v %v", snap["name_label"], snap["$snapshot_of"])
				}
			}},
		{name: "snapshot default name", coll: "vms", pick: vmNamed("vm1"), action: "snapshot", status: 200,
			check: func(t *testing.T, sf *simFixture, id string, result map[string]any) {
				if got := sf.objField(t, "vm-snapshots", result["id"].(string), "name_label"); got != "vm1" {
					t.Errorf("name_label %v", got)
				}
			}},
		{name: "clone", coll: "vms", pick: vmNamed("vm1"), action: "clone", status: 200,
			body: func(*testing.T, *simFixture) string { return `{"name_label": "vm1 clone"}` },
			check: func(t *testing.T, sf *simFixture, id string, result map[string]any) {
				if got := sf.objField(t, "vms", result["id"].(string), "name_label"); got != "vm1 clone" {
					t.Errorf("name_label %v", got)
				}
			}},
		{name: "revert", coll: "vm-snapshots", pick: func(t *testing.T, sf *simFixture) string { return sf.idOf(t, "vm-snapshots", "vm0 snapshot 0") },
			action: "revert", status: 204,
			check: func(t *testing.T, sf *simFixture, _ string, _ map[string]any) {
				// vm0 was running when it was snapshotted: XO starts it
				// again after the revert.
				if got := sf.objField(t, "vms", sf.idOf(t, "vms", "vm0"), "power_state"); got != "Running" {
					t.Errorf("power_state %v after revert", got)
				}
			}},
		{name: "revert to a halted snapshot", coll: "vm-snapshots", pick: func(t *testing.T, sf *simFixture) string {
			vm := sf.idOf(t, "vms", "vm1")
			rec := sf.send(t, "POST", BasePath+"/vms/"+vm+"/actions/snapshot?sync", `{"name_label": "halted snap"}`)
			var res map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			if rec := sf.send(t, "POST", BasePath+"/vms/"+vm+"/actions/start?sync", ""); rec.Code != 204 {
				t.Fatal(rec.Body)
			}
			return res["id"].(string)
		}, action: "revert", status: 204,
			check: func(t *testing.T, sf *simFixture, _ string, _ map[string]any) {
				if got := sf.objField(t, "vms", sf.idOf(t, "vms", "vm1"), "power_state"); got != "Halted" {
					t.Errorf("power_state %v after revert", got)
				}
			}},
		{name: "sr scan", coll: "srs", pick: func(t *testing.T, sf *simFixture) string { return sf.idOf(t, "srs", "sr0") }, action: "scan", status: 204},
		{name: "host disable", coll: "hosts", pick: hostNamed("host1"), action: "disable", status: 204,
			check: func(t *testing.T, sf *simFixture, id string, _ map[string]any) {
				if got := sf.objField(t, "hosts", id, "enabled"); got != false {
					t.Errorf("enabled %v", got)
				}
			}},
		{name: "host enable", coll: "hosts", pick: func(t *testing.T, sf *simFixture) string {
			id := sf.idOf(t, "hosts", "host1")
			sf.call(t, "host.disable", sf.ref(t, "host", id))
			return id
		}, action: "enable", status: 204,
			check: func(t *testing.T, sf *simFixture, id string, _ map[string]any) {
				if got := sf.objField(t, "hosts", id, "enabled"); got != true {
					t.Errorf("enabled %v", got)
				}
			}},
		{name: "host clean_shutdown evacuates", coll: "hosts", pick: func(t *testing.T, sf *simFixture) string {
			id := sf.idOf(t, "hosts", "host1")
			sf.call(t, "VM.pool_migrate", sf.ref(t, "VM", sf.idOf(t, "vms", "vm0")), sf.ref(t, "host", id), map[string]string{})
			return id
		}, action: "clean_shutdown", status: 204,
			check: func(t *testing.T, sf *simFixture, id string, _ map[string]any) {
				var vms []map[string]any
				sf.getJSON(t, BasePath+"/vms?fields=id&filter="+url.QueryEscape("$container:"+id), &vms)
				if len(vms) != 0 {
					t.Errorf("%d VMs still on the host", len(vms))
				}
				if got := sf.objField(t, "vms", sf.idOf(t, "vms", "vm0"), "power_state"); got != "Running" {
					t.Errorf("vm0 %v after the evacuation", got)
				}
			}},
		{name: "host restart_toolstack", coll: "hosts", pick: hostNamed("host1"), action: "restart_toolstack", status: 204},
		{name: "vbd disconnect", coll: "vbds", pick: vmDiskVBD("vm0"), action: "disconnect", status: 204,
			check: func(t *testing.T, sf *simFixture, id string, _ map[string]any) {
				if got := sf.objField(t, "vbds", id, "attached"); got != false {
					t.Errorf("attached %v", got)
				}
			}},
		{name: "vbd connect", coll: "vbds", pick: func(t *testing.T, sf *simFixture) string {
			id := vmDiskVBD("vm0")(t, sf)
			sf.call(t, "VBD.unplug", sf.ref(t, "VBD", id))
			return id
		}, action: "connect", status: 204,
			check: func(t *testing.T, sf *simFixture, id string, _ map[string]any) {
				if got := sf.objField(t, "vbds", id, "attached"); got != true {
					t.Errorf("attached %v", got)
				}
			}},
		{name: "vif connect", coll: "vifs", pick: func(t *testing.T, sf *simFixture) string {
			id := vmVIF("vm0")(t, sf)
			sf.call(t, "VIF.unplug", sf.ref(t, "VIF", id))
			return id
		}, action: "connect", status: 204,
			check: func(t *testing.T, sf *simFixture, id string, _ map[string]any) {
				if got := sf.objField(t, "vifs", id, "attached"); got != true {
					t.Errorf("attached %v", got)
				}
			}},
		{name: "vif disconnect", coll: "vifs", pick: vmVIF("vm0"), action: "disconnect", status: 204,
			check: func(t *testing.T, sf *simFixture, id string, _ map[string]any) {
				if got := sf.objField(t, "vifs", id, "attached"); got != false {
					t.Errorf("attached %v", got)
				}
			}},
		{name: "vdi migrate", coll: "vdis", pick: func(t *testing.T, sf *simFixture) string { return sf.vmDisks(t, "vms", sf.idOf(t, "vms", "vm0"))[0] },
			action: "migrate", status: 200,
			body: func(t *testing.T, sf *simFixture) string {
				return `{"srId": "` + sf.idOf(t, "srs", "host0 local storage") + `"}`
			},
			check: func(t *testing.T, sf *simFixture, _ string, result map[string]any) {
				if got := sf.objField(t, "vdis", result["id"].(string), "$SR"); got != sf.idOf(t, "srs", "host0 local storage") {
					t.Errorf("$SR %v", got)
				}
			}},
		{name: "XAPI error", coll: "vms", pick: vmNamed("vm1"), action: "clean_shutdown", status: 409,
			check: func(t *testing.T, sf *simFixture, id string, result map[string]any) {
				if result["data"].(map[string]any)["code"] != "VM_BAD_POWER_STATE" {
					t.Errorf("error %v", result)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
			id := tt.pick(t, sf)
			body := ""
			if tt.body != nil {
				body = tt.body(t, sf)
			}
			rec := sf.send(t, "POST", BasePath+"/"+tt.coll+"/"+id+"/actions/"+tt.action+"?sync", body)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			var result map[string]any
			if rec.Code != http.StatusNoContent {
				if err := json.Unmarshal(rec.Body.Bytes(), &result); err != nil {
					t.Fatalf("%v: %s", err, rec.Body)
				}
			} else if rec.Body.Len() != 0 {
				t.Errorf("204 with a body %q", rec.Body)
			}
			if rec.Code == http.StatusOK {
				if loc := rec.Header().Get("Location"); !strings.HasSuffix(loc, "/"+result["id"].(string)) {
					t.Errorf("Location %q for %v", loc, result)
				}
			}
			if tt.check != nil {
				tt.check(t, sf, id, result)
			}
		})
	}
}

func vmNamed(name string) func(*testing.T, *simFixture) string {
	return func(t *testing.T, sf *simFixture) string { return sf.idOf(t, "vms", name) }
}

func hostNamed(name string) func(*testing.T, *simFixture) string {
	return func(t *testing.T, sf *simFixture) string { return sf.idOf(t, "hosts", name) }
}

// vmDiskVBD picks the VBD of the first disk of a VM.
func vmDiskVBD(vm string) func(*testing.T, *simFixture) string {
	return func(t *testing.T, sf *simFixture) string {
		var vbds []map[string]any
		sf.getJSON(t, BasePath+"/vbds?fields=id,is_cd_drive&filter="+url.QueryEscape("VM:"+sf.idOf(t, "vms", vm)), &vbds)
		for _, v := range vbds {
			if v["is_cd_drive"] == false {
				return v["id"].(string)
			}
		}
		t.Fatalf("no disk VBD on %s", vm)
		return ""
	}
}

// vmVIF picks the first VIF of a VM.
func vmVIF(vm string) func(*testing.T, *simFixture) string {
	return func(t *testing.T, sf *simFixture) string {
		var vifs []map[string]any
		sf.getJSON(t, BasePath+"/vifs?fields=id&filter="+url.QueryEscape("$VM:"+sf.idOf(t, "vms", vm)), &vifs)
		if len(vifs) == 0 {
			t.Fatalf("no VIF on %s", vm)
		}
		return vifs[0]["id"].(string)
	}
}

// waitEnded polls a task until it has ended, failing after a generous
// bound (a hang, not a timing assertion).
func (sf *simFixture) waitEnded(t testing.TB, href string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var task map[string]any
		sf.getJSON(t, href, &task)
		if task["status"] != "pending" {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still pending", href)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestActionsAsync(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	tests := []struct {
		name, vm, action, body string
		status                 string
		check                  func(t *testing.T, task map[string]any)
	}{
		{name: "start", vm: "vm1", action: "start", status: "success", check: func(t *testing.T, task map[string]any) {
			if _, ok := task["result"]; ok {
				t.Errorf("void action with a result %v", task["result"])
			}
			if got := sf.objField(t, "vms", sf.idOf(t, "vms", "vm1"), "power_state"); got != "Running" {
				t.Errorf("power_state %v", got)
			}
		}},
		{name: "snapshot", vm: "vm5", action: "snapshot", body: `{"name_label": "async snap"}`, status: "success", check: func(t *testing.T, task map[string]any) {
			id, _ := task["result"].(map[string]any)["id"].(string)
			if got := sf.objField(t, "vm-snapshots", id, "name_label"); got != "async snap" {
				t.Errorf("snapshot name %v", got)
			}
		}},
		{name: "failure", vm: "vm5", action: "unpause", status: "failure", check: func(t *testing.T, task map[string]any) {
			if code := task["result"].(map[string]any)["code"]; code != "VM_BAD_POWER_STATE" {
				t.Errorf("result %v", task["result"])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := sf.idOf(t, "vms", tt.vm)
			rec := sf.send(t, "POST", BasePath+"/vms/"+id+"/actions/"+tt.action, tt.body)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			href := rec.Header().Get("Location")
			if !strings.HasPrefix(href, BasePath+"/tasks/") || rec.Body.String() != href {
				t.Fatalf("Location %q, body %q", href, rec.Body)
			}
			task := sf.waitEnded(t, href)
			props := task["properties"].(map[string]any)
			if task["status"] != tt.status || props["name"] != "REST API: "+tt.action+" VM" || props["objectId"] != id {
				t.Fatalf("task %v", task)
			}
			tt.check(t, task)
		})
	}
}

func TestActionValidation(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	vm := sf.idOf(t, "vms", "vm1")
	tests := []struct {
		name, target, body string
		status             int
		inError            string
	}{
		{"wrong type", "/vms/" + vm + "/actions/snapshot", `{"name_label": 3}`, 422, "name_label: must be a string"},
		{"empty string", "/vms/" + vm + "/actions/snapshot", `{"name_label": ""}`, 422, "must not be empty"},
		{"unknown parameter", "/vms/" + vm + "/actions/snapshot", `{"name": "x"}`, 422, "name: unknown parameter"},
		{"parameters of a parameterless action", "/vms/" + vm + "/actions/clean_reboot", `{"force": true}`, 422, "force: unknown parameter"},
		{"missing required", "/vms/" + vm + "/actions/migrate", `{}`, 422, "hostId: is required"},
		{"unknown host", "/vms/" + vm + "/actions/migrate", `{"hostId": "nope"}`, 422, "no such host nope"},
		{"host given an SR", "/vms/" + vm + "/actions/migrate", `{"hostId": "` + sf.idOf(t, "srs", "sr0") + `"}`, 422, "no such host"},
		{"invalid JSON", "/vms/" + vm + "/actions/snapshot", `{`, 400, "invalid JSON"},
		{"unknown VM", "/vms/00000000-0000-0000-0000-000000000000/actions/start", ``, 404, "no such VM"},
		{"unknown action", "/vms/" + vm + "/actions/fly", ``, 404, "no such route"},
		{"bad sync value", "/vms/" + vm + "/actions/start?sync=maybe", ``, 422, ""},
	}
	tasksBefore := sf.taskCount(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sf.send(t, "POST", BasePath+tt.target, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if body := errorOf(t, rec); !strings.Contains(body.Error, tt.inError) {
				t.Errorf("error %q does not contain %q", body.Error, tt.inError)
			}
		})
	}
	if got := sf.taskCount(t); got != tasksBefore {
		t.Errorf("%d tasks after refused actions, %d before", got, tasksBefore)
	}
	if got := sf.objField(t, "vms", vm, "power_state"); got != "Halted" {
		t.Errorf("power_state %v", got)
	}
}

// taskCount counts the tasks.
func (sf *simFixture) taskCount(t testing.TB) int {
	t.Helper()
	var ids []string
	sf.getJSON(t, BasePath+"/tasks", &ids)
	return len(ids)
}

func TestSyncActionOutlivesItsClient(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	vm := sf.idOf(t, "vms", "vm0")
	sf.sims[0].SetDelay("VM.clean_shutdown", time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	req := httptest.NewRequestWithContext(ctx, "POST", BasePath+"/vms/"+vm+"/actions/clean_shutdown?sync", nil)
	req.AddCookie(&http.Cookie{Name: tokenCookie, Value: sf.token})
	rec := httptest.NewRecorder()
	served := make(chan struct{})
	go func() {
		defer close(served)
		sf.h.ServeHTTP(rec, req)
	}()
	// Wait until the action's task exists, then leave.
	filter := url.QueryEscape(`properties:(name:"REST API: clean_shutdown VM")`)
	var tasks []map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for len(tasks) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no task for the action")
		}
		sf.getJSON(t, BasePath+"/tasks?fields=id,status&filter="+filter, &tasks)
	}
	cancel()
	<-served
	task := sf.waitEnded(t, BasePath+"/tasks/"+tasks[0]["id"].(string))
	if task["status"] != "success" {
		t.Fatalf("task %v", task)
	}
	if got := sf.objField(t, "vms", vm, "power_state"); got != "Halted" {
		t.Errorf("power_state %v: the work stopped with the client", got)
	}
}

func TestVDIMigrateFallsBackToCopy(t *testing.T) {
	tests := []struct {
		name   string
		vm     string
		status int
	}{
		{"disk of a halted VM is copied", "vm1", http.StatusOK},
		{"disk of a running VM is not", "vm0", http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
			t.Cleanup(sf.sims[0].InjectFault(xapisim.FaultRule{Method: "VDI.pool_migrate", Fault: xapisim.NewFault("NO_HOSTS_AVAILABLE")}))
			vm := sf.idOf(t, "vms", tt.vm)
			disk := sf.vmDisks(t, "vms", vm)[0]
			sr := sf.idOf(t, "srs", "host0 local storage")
			rec := sf.send(t, "POST", BasePath+"/vdis/"+disk+"/actions/migrate?sync", `{"srId": "`+sr+`"}`)
			if rec.Code != tt.status {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if tt.status != http.StatusOK {
				if body := errorOf(t, rec); body.Data["code"] != "NO_HOSTS_AVAILABLE" {
					t.Errorf("data %v", body.Data)
				}
				if disks := sf.vmDisks(t, "vms", vm); disks[0] != disk {
					t.Errorf("disks %v changed", disks)
				}
				return
			}
			var result map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &result); err != nil {
				t.Fatal(err)
			}
			id := result["id"].(string)
			if got := sf.objField(t, "vdis", id, "$SR"); got != sr {
				t.Errorf("$SR %v", got)
			}
			if !slices.Contains(sf.vmDisks(t, "vms", vm), id) {
				t.Errorf("the copy %s is not attached to %s: %v", id, tt.vm, sf.vmDisks(t, "vms", vm))
			}
			if got := sf.get(t, BasePath+"/vdis/"+disk).Code; got != http.StatusNotFound {
				t.Errorf("the original is still there: %d", got)
			}
		})
	}
}
