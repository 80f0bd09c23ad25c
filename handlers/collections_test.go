package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapisim"
)

// TestCollections lists every collection of the simulated pool, and gets
// every listed object's first one by id and by XAPI ref.
func TestCollections(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	// A task, so that the tasks collection is not empty.
	sf.call(t, "task.create", "xorest test task", "")
	for _, c := range collections() {
		t.Run(c.name, func(t *testing.T) {
			want, err := sf.pools.Objects(t.Context(), c.kind)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatalf("the simulated pool has no %s: the test cannot check them", c.kind)
			}
			var urls []string
			sf.getJSON(t, BasePath+"/"+c.name, &urls)
			if len(urls) != len(want) {
				t.Fatalf("%d URLs, the pool has %d %s", len(urls), len(want), c.kind)
			}
			for i, u := range urls {
				if wantURL := BasePath + "/" + c.name + "/" + want[i]["id"].(string); u != wantURL {
					t.Errorf("URL %d = %s, want %s", i, u, wantURL)
				}
			}
			var items []map[string]any
			sf.getJSON(t, BasePath+"/"+c.name+"?fields=id,type,_xapiRef,properties.xapiRef", &items)
			wantType := any(c.kind)
			switch c.kind {
			case "alarm":
				wantType = "message"
			case "task":
				wantType = nil // XO tasks have no type
			}
			for _, it := range items {
				if it["type"] != wantType {
					t.Errorf("%v has type %v, want %v", it["id"], it["type"], wantType)
				}
				if it["href"] != BasePath+"/"+c.name+"/"+it["id"].(string) || it["url"] != it["href"] {
					t.Errorf("item links: %v", it)
				}
			}
			first := items[0]
			id := first["id"].(string)
			ref, _ := first["_xapiRef"].(string)
			if c.kind == "task" {
				ref = first["properties"].(map[string]any)["xapiRef"].(string)
			}
			for _, key := range []string{id, ref} {
				var obj map[string]any
				sf.getJSON(t, BasePath+"/"+c.name+"/"+key, &obj)
				if obj["id"] != id || obj["href"] != BasePath+"/"+c.name+"/"+id {
					t.Errorf("GET by %s: id %v href %v", key, obj["id"], obj["href"])
				}
				if _, ok := obj["url"]; ok {
					t.Error("a single object has url")
				}
			}

			rec := sf.get(t, BasePath+"/"+c.name+"/no-such-id")
			if rec.Code != http.StatusNotFound {
				t.Fatalf("unknown id: %d %s", rec.Code, rec.Body)
			}
			var body errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Error != "no such "+c.kind+" no-such-id" || body.Data["id"] != "no-such-id" || body.Data["type"] != c.kind {
				t.Errorf("unknown id: %+v", body)
			}
		})
	}
}

// TestObjectOfAnotherType checks that an id of another collection is a
// 404 of this one, as XO's getObject(id, type) does.
func TestObjectOfAnotherType(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	host := sf.idOf(t, "hosts", "host0")
	rec := sf.get(t, BasePath+"/vms/"+host)
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"no such VM `+host+`"`) {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

// TestSubCollections checks the per-object sub-collections against the
// links of the objects.
func TestSubCollections(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	vm := sf.idOf(t, "vms", "vm0")
	snap := sf.idOf(t, "vm-snapshots", "vm0 snapshot 0")
	// A task applying to vm0, as XAPI marks the tasks of its operations.
	task := sf.call(t, "task.create", "on vm0", "").(string)
	sf.call(t, "task.add_to_other_config", task, "applies_to", string(sf.ref(t, "VM", vm)))
	var taskID string
	if err := sf.clients[0].CallInto(t.Context(), &taskID, "task.get_uuid", task); err != nil {
		t.Fatal(err)
	}
	// A message about vm0.
	sf.call(t, "message.create", "xorest_test", "1", "VM", vm, "hello")

	var vmObj, snapObj map[string]any
	sf.getJSON(t, BasePath+"/vms/"+vm, &vmObj)
	sf.getJSON(t, BasePath+"/vm-snapshots/"+snap, &snapObj)

	vdisOf := func(obj map[string]any) []string {
		var ids []string
		for _, vbd := range obj["$VBDs"].([]any) {
			var v map[string]any
			sf.getJSON(t, BasePath+"/vbds/"+vbd.(string), &v)
			if id, ok := v["VDI"].(string); ok {
				ids = append(ids, id)
			}
		}
		return ids
	}
	tests := []struct {
		name   string
		target string
		want   func(items []map[string]any) string // "" when right
	}{
		{"VM disks", "/vms/" + vm + "/vdis?fields=id,type", func(items []map[string]any) string {
			want := vdisOf(vmObj)
			if len(want) == 0 || len(items) != len(want) {
				return "disks do not match $VBDs"
			}
			for i, it := range items {
				if it["id"] != want[i] || it["type"] != "VDI" || it["href"] != BasePath+"/vdis/"+want[i] {
					return "disk " + want[i]
				}
			}
			return ""
		}},
		{"snapshot disks", "/vm-snapshots/" + snap + "/vdis?fields=id,type", func(items []map[string]any) string {
			want := vdisOf(snapObj)
			if len(items) == 0 || len(items) != len(want) {
				return "disks do not match $VBDs"
			}
			for _, it := range items {
				if it["type"] != "VDI-snapshot" || !strings.HasPrefix(it["href"].(string), BasePath+"/vdi-snapshots/") {
					return "not a VDI snapshot"
				}
			}
			return ""
		}},
		{"messages", "/vms/" + vm + "/messages?fields=name,body,$object", func(items []map[string]any) string {
			if !slices.ContainsFunc(items, func(m map[string]any) bool { return m["name"] == "xorest_test" }) {
				return "the new message is missing"
			}
			for _, m := range items {
				if m["$object"] != vm || !strings.HasPrefix(m["href"].(string), BasePath+"/messages/") {
					return "a message of another object"
				}
			}
			return ""
		}},
		{"tasks", "/vms/" + vm + "/tasks?fields=id,properties.objectId", func(items []map[string]any) string {
			if len(items) != 1 || items[0]["id"] != taskID || items[0]["href"] != BasePath+"/tasks/"+taskID {
				return "want exactly the task applying to vm0"
			}
			return ""
		}},
		{"no tasks", "/hosts/" + sf.idOf(t, "hosts", "host0") + "/tasks", func(items []map[string]any) string {
			if len(items) != 0 {
				return "host0 has no task"
			}
			return ""
		}},
		{"filter and limit", "/vms/" + vm + "/messages?fields=name&filter=name:xorest_test&limit=1", func(items []map[string]any) string {
			if len(items) != 1 || items[0]["name"] != "xorest_test" {
				return "filter or limit ignored"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var items []map[string]any
			sf.getJSON(t, BasePath+tt.target, &items)
			if msg := tt.want(items); msg != "" {
				t.Errorf("%s: %v", msg, items)
			}
		})
	}
	t.Run("unknown parent", func(t *testing.T) {
		rec := sf.get(t, BasePath+"/vms/nope/vdis")
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "no such VM nope") {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
}

// TestFreshness writes through XAPI with another client and reads at once:
// every read catches up first.
func TestFreshness(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	vm := sf.idOf(t, "vms", "vm1")
	ref := sf.ref(t, "VM", vm)
	for i, name := range []string{"renamed once", "renamed twice", "renamed thrice"} {
		sf.call(t, "VM.set_name_label", ref, name)
		var obj map[string]any
		sf.getJSON(t, BasePath+"/vms/"+vm+"?fields=name_label", &obj)
		if obj["name_label"] != name {
			t.Fatalf("write %d: GET shows %v, want %q", i, obj["name_label"], name)
		}
		var items []map[string]any
		sf.getJSON(t, BasePath+"/vms?fields=name_label&filter="+url.QueryEscape("name_label:"+jsQuote(name)), &items)
		if len(items) != 1 {
			t.Fatalf("write %d: the collection shows %d VMs named %q", i, len(items), name)
		}
	}
	// A destroyed object is gone at once.
	sf.call(t, "VM.destroy", ref)
	if rec := sf.get(t, BasePath+"/vms/"+vm); rec.Code != http.StatusNotFound {
		t.Errorf("destroyed VM: %d", rec.Code)
	}
}

// TestSeveralPools merges the collections of two pools and routes ids to
// their pool.
func TestSeveralPools(t *testing.T) {
	a, b := xapisim.Default(), xapisim.Default()
	b.PoolName, b.Seed, b.VMs = "other", "other seed", 2
	sf := newSimFixture(t, []xapisim.Model{a, b})
	var pools []map[string]any
	sf.getJSON(t, BasePath+"/pools?fields=name_label,id", &pools)
	if len(pools) != 2 || pools[0]["name_label"] != "pool0" || pools[1]["name_label"] != "other" {
		t.Fatalf("pools: %v", pools)
	}
	var vms []map[string]any
	sf.getJSON(t, BasePath+"/vms?fields=$pool,name_label", &vms)
	perPool := map[any]int{}
	for _, v := range vms {
		perPool[v["$pool"]]++
	}
	if perPool[pools[0]["id"]] != a.VMs || perPool[pools[1]["id"]] != b.VMs {
		t.Errorf("VMs per pool: %v", perPool)
	}
	for _, v := range vms {
		var obj map[string]any
		sf.getJSON(t, v["href"].(string)+"?fields=$pool", &obj)
		if obj["$pool"] != v["$pool"] {
			t.Errorf("%s answered from pool %v", v["href"], obj["$pool"])
		}
	}
}

// TestNoPools checks that the routes that need a pool answer 503 without
// one.
func TestNoPools(t *testing.T) {
	f := newFixture(t)
	for _, target := range []string{"/vms", "/vms/x", "/vms/x/vdis", "/hosts/x/messages", "/tasks/x"} {
		rec := f.do(t, "GET", BasePath+target, nil, asAdmin())
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s: %d %s", target, rec.Code, rec.Body)
		}
	}
}
