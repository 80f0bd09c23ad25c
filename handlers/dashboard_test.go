package handlers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/xorest/xorest/xo/xapisim"
)

// dashboardParts reads an NDJSON dashboard: every line must be an object
// with one key; the parts are merged one level deep (XO writes
// {"hosts": {"status": …}} and {"hosts": {"missingPatches": …}} apart).
func dashboardParts(t *testing.T, body []byte) (map[string]any, []string) {
	t.Helper()
	merged := map[string]any{}
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if len(line) != 1 {
			t.Fatalf("line %q has %d keys", sc.Text(), len(line))
		}
		for k, v := range line {
			keys = append(keys, k)
			if sub, ok := v.(map[string]any); ok {
				if prev, ok := merged[k].(map[string]any); ok {
					maps.Copy(prev, sub)
					continue
				}
			}
			merged[k] = v
		}
	}
	return merged, keys
}

// getDashboard fetches url as JSON and as NDJSON, checks that both say the
// same, and returns the JSON.
func getDashboard(t *testing.T, sf *simFixture, url string) map[string]any {
	t.Helper()
	var plain map[string]any
	sf.getJSON(t, url, &plain)
	rec := sf.get(t, url+"?ndjson")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != contentNDJSON {
		t.Fatalf("ndjson: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	parts, _ := dashboardParts(t, rec.Body.Bytes())
	a, _ := json.Marshal(plain)
	b, _ := json.Marshal(parts)
	if !bytes.Equal(a, b) {
		t.Errorf("ndjson parts differ from the JSON answer:\n%s\n%s", a, b)
	}
	return plain
}

// jsonAt reads a nested member of a JSON object.
func jsonAt(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func TestDashboard(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	var vms, srs, pools []map[string]any
	sf.getJSON(t, BasePath+"/vms?fields=power_state,CPUs", &vms)
	sf.getJSON(t, BasePath+"/srs?fields=size,physical_usage,content_type", &srs)
	sf.getJSON(t, BasePath+"/pools?fields=id,cpus", &pools)
	running, cpus := 0, 0.0
	for _, vm := range vms {
		if vm["power_state"] == "Running" {
			running++
			cpus += num(jsonAt(vm, "CPUs", "number"))
		}
	}
	srSize, srUsed := 0.0, 0.0
	for _, sr := range srs {
		if num(sr["size"]) > 0 && sr["content_type"] != "iso" {
			srSize += num(sr["size"])
			srUsed += num(sr["physical_usage"])
		}
	}

	t.Run("global", func(t *testing.T) {
		d := getDashboard(t, sf, BasePath+"/dashboard")
		keys := slices.Sorted(maps.Keys(d))
		want := []string{"hostsStatus", "missingPatches", "nHosts", "nPools", "resourcesOverview", "storageRepositories", "vmsStatus"}
		if !slices.Equal(keys, want) {
			t.Errorf("keys %q, want %q", keys, want)
		}
		checks := []struct {
			name string
			got  any
			want float64
		}{
			{"nPools", d["nPools"], 1},
			{"nHosts", d["nHosts"], 2},
			{"hostsStatus.running", jsonAt(d, "hostsStatus", "running"), 2},
			{"hostsStatus.total", jsonAt(d, "hostsStatus", "total"), 2},
			{"vmsStatus.total", jsonAt(d, "vmsStatus", "total"), float64(len(vms))},
			{"vmsStatus.running", jsonAt(d, "vmsStatus", "running"), float64(running)},
			{"resourcesOverview.nCpus", jsonAt(d, "resourcesOverview", "nCpus"), num(jsonAt(pools[0], "cpus", "cores"))},
			{"resourcesOverview.srSize", jsonAt(d, "resourcesOverview", "srSize"), srSize},
			{"storageRepositories.size.used", jsonAt(d, "storageRepositories", "size", "used"), srUsed},
			{"storageRepositories.size.available", jsonAt(d, "storageRepositories", "size", "available"), srSize - srUsed},
			{"missingPatches.nHostsWithMissingPatches", jsonAt(d, "missingPatches", "nHostsWithMissingPatches"), 2},
			{"missingPatches.nPoolsWithMissingPatches", jsonAt(d, "missingPatches", "nPoolsWithMissingPatches"), 1},
			{"missingPatches.nHostsFailed", jsonAt(d, "missingPatches", "nHostsFailed"), 0},
		}
		for _, c := range checks {
			if num(c.got) != c.want {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}
		if jsonAt(d, "missingPatches", "hasAuthorization") != true {
			t.Error("missingPatches.hasAuthorization is not true")
		}
	})

	t.Run("pool", func(t *testing.T) {
		d := getDashboard(t, sf, BasePath+"/pools/"+pools[0]["id"].(string)+"/dashboard")
		if got := slices.Sorted(maps.Keys(d)); !slices.Equal(got, []string{"alarms", "cpuProvisioning", "hosts", "srs", "vms"}) {
			t.Errorf("keys %q", got)
		}
		if got := slices.Sorted(maps.Keys(jsonAt(d, "hosts").(map[string]any))); !slices.Equal(got, []string{"missingPatches", "status", "topFiveUsage"}) {
			t.Errorf("hosts keys %q", got)
		}
		if got := slices.Sorted(maps.Keys(jsonAt(d, "hosts", "status").(map[string]any))); !slices.Equal(got, []string{"disabled", "halted", "running", "total"}) {
			t.Errorf("hosts.status keys %q", got)
		}
		if got := slices.Sorted(maps.Keys(jsonAt(d, "vms", "status").(map[string]any))); !slices.Equal(got, []string{"halted", "paused", "running", "suspended", "total"}) {
			t.Errorf("vms.status keys %q", got)
		}
		if got := num(jsonAt(d, "cpuProvisioning", "assigned")); got != cpus {
			t.Errorf("cpuProvisioning.assigned %v, want %v", got, cpus)
		}
		ram, _ := jsonAt(d, "hosts", "topFiveUsage", "ram").([]any)
		if len(ram) != 2 || num(jsonAt(ram[0], "percent")) < num(jsonAt(ram[1], "percent")) {
			t.Errorf("hosts.topFiveUsage.ram %v", ram)
		}
		top, _ := jsonAt(d, "srs", "topFiveUsage").([]any)
		if len(top) == 0 || len(top) > 5 {
			t.Errorf("srs.topFiveUsage %v", top)
		}
		for i, sr := range top {
			if want := num(jsonAt(sr, "physical_usage")) / num(jsonAt(sr, "size")) * 100; num(jsonAt(sr, "percent")) != want {
				t.Errorf("SR %v percent, want %v", sr, want)
			}
			if i > 0 && num(jsonAt(top[i-1], "percent")) < num(jsonAt(sr, "percent")) {
				t.Errorf("srs.topFiveUsage not sorted: %v", top)
			}
		}
		if patches, _ := jsonAt(d, "hosts", "missingPatches", "missingPatches").([]any); len(patches) != 2 {
			t.Errorf("hosts.missingPatches %v", jsonAt(d, "hosts", "missingPatches"))
		}
	})

	t.Run("vm", func(t *testing.T) {
		vm := sf.idOf(t, "vms", "vm1")
		d := getDashboard(t, sf, BasePath+"/vms/"+vm+"/dashboard")
		if got := slices.Sorted(maps.Keys(d)); !slices.Equal(got, []string{"alarms", "quickInfo"}) {
			t.Errorf("keys %q", got)
		}
		var obj map[string]any
		sf.getJSON(t, BasePath+"/vms/"+vm, &obj)
		q := d["quickInfo"].(map[string]any)
		for _, k := range []string{"id", "uuid", "power_state", "name_description", "$pool"} {
			if q[k] != obj[k] {
				t.Errorf("quickInfo.%s %v, want %v", k, q[k], obj[k])
			}
		}
		if num(jsonAt(q, "CPUs", "number")) != num(jsonAt(obj, "CPUs", "number")) || num(jsonAt(q, "memory", "size")) != num(jsonAt(obj, "memory", "size")) {
			t.Errorf("quickInfo CPUs/memory %v %v", q["CPUs"], q["memory"])
		}
		if _, ok := d["alarms"].([]any); !ok {
			t.Errorf("alarms %v", d["alarms"])
		}
	})

	t.Run("not found", func(t *testing.T) {
		for _, u := range []string{BasePath + "/pools/nope/dashboard", BasePath + "/vms/nope/dashboard"} {
			if rec := sf.get(t, u); rec.Code != http.StatusNotFound {
				t.Errorf("%s: %d", u, rec.Code)
			}
		}
		if rec := sf.get(t, BasePath+"/dashboard?ndjson=maybe"); rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("ndjson=maybe: %d", rec.Code)
		}
	})
}

func TestTopFive(t *testing.T) {
	var items []map[string]any
	for _, p := range []float64{10, 70, 30, 90, 50, 20} {
		items = append(items, map[string]any{"percent": p})
	}
	got := topFive(items)
	var ps []float64
	for _, it := range got {
		ps = append(ps, num(it["percent"]))
	}
	if !slices.Equal(ps, []float64{90, 70, 50, 30, 20}) {
		t.Errorf("got %v", ps)
	}
}
