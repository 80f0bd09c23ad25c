package handlers

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapisim"
)

// hostRefs returns the uuid and XAPI ref of the hosts host0 (the master)
// and host1 of the fixture's pool.
func hostRefs(t *testing.T, sf *simFixture) (master, member string) {
	t.Helper()
	return sf.idOf(t, "hosts", "host0"), sf.idOf(t, "hosts", "host1")
}

// modifyHost changes the record of host uuid in the simulator.
func modifyHost(t *testing.T, sf *simFixture, uuid string, change func(rec map[string]any)) {
	t.Helper()
	ref := string(sf.ref(t, "host", uuid))
	if err := sf.sims[0].DB.Write(func(tx *xapisim.Tx) error {
		change(tx.Modify(ref))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// setStringMap replaces key of the string map field of rec (deleting it
// when value is "").
func setStringMap(rec map[string]any, field, key, value string) {
	m := maps.Clone(rec[field].(map[string]string))
	if value == "" {
		delete(m, key)
	} else {
		m[key] = value
	}
	rec[field] = m
}

// haltHost shuts host uuid down through XAPI.
func haltHost(t *testing.T, sf *simFixture, uuid string) {
	t.Helper()
	ref := sf.ref(t, "host", uuid)
	for _, m := range []string{"host.disable", "host.evacuate", "host.shutdown"} {
		sf.call(t, m, ref)
	}
}

// getWith serves GET url over HTTP with the fixture's token and the
// request headers given as name, value pairs.
func (sf *simFixture) getWith(t *testing.T, ctx context.Context, url string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.AddCookie(&http.Cookie{Name: tokenCookie, Value: sf.token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestHostAuditLog(t *testing.T) {
	sf, base := transferFixture(t)
	master, member := hostRefs(t, sf)
	before := sf.taskTotal(t)
	url := base + BasePath + "/hosts/" + master + "/audit.txt"

	resp := sf.getWith(t, t.Context(), url)
	plain := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, plain)
	}
	wantHeaders := map[string]string{
		"Content-Type":        "application/octet-stream",
		"Content-Disposition": `attachment; filename="host0-2025-10-09T08:53:20.000Z-audit.txt"`,
		"Content-Encoding":    "",
	}
	for k, v := range wantHeaders {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(string(plain), "|audit|host0|") || !strings.Contains(string(plain), "'session.login_with_password'") {
		t.Errorf("not XAPI's audit lines:\n%s", plain)
	}

	for _, enc := range []string{"gzip", "deflate, x-gzip;q=0.5", "GZIP"} {
		t.Run("Accept-Encoding "+enc, func(t *testing.T) {
			resp := sf.getWith(t, t.Context(), url, "Accept-Encoding", enc)
			body := readAll(t, resp)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Errorf("gunzipped body differs from the plain one:\n%s\n---\n%s", got, plain)
			}
		})
	}
	t.Run("Accept-Encoding identity", func(t *testing.T) {
		resp := sf.getWith(t, t.Context(), url, "Accept-Encoding", "br, identity")
		if body := readAll(t, resp); resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, plain) {
			t.Errorf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
	})

	haltHost(t, sf, member)
	tests := []struct {
		name   string
		host   string
		status int
	}{
		{"pool member", member, http.StatusConflict}, // halted: checked first
		{"unknown host", "00000000-0000-0000-0000-000000000000", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := sf.getWith(t, t.Context(), base+BasePath+"/hosts/"+tt.host+"/audit.txt")
			if body := readAll(t, resp); resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
		})
	}
	if n := sf.taskTotal(t); n != before {
		t.Errorf("%d tasks, want %d", n, before)
	}
}

// TestHostFileOfPoolMember checks that a member's files are asked of the
// member: here its address has nothing listening, so they are a 503
// (TestMemberHostFiles reads a member that answers).
func TestHostFileOfPoolMember(t *testing.T) {
	sf, base := transferFixture(t)
	_, member := hostRefs(t, sf)
	modifyHost(t, sf, member, func(rec map[string]any) { rec["address"] = "127.0.0.1:1" })
	before := sf.taskTotal(t)
	for _, file := range []string{"audit.txt", "logs.tgz"} {
		resp := sf.getWith(t, t.Context(), base+BasePath+"/hosts/"+member+"/"+file)
		if body := readAll(t, resp); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d: %s", file, resp.StatusCode, body)
		}
	}
	if n := sf.taskTotal(t); n != before {
		t.Errorf("%d tasks, want %d", n, before)
	}
}

func TestHostLogsTgz(t *testing.T) {
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		t.Fatal("tar (with gzip) checks the logs archive: apt-get install -y tar gzip")
	}
	sf, base := transferFixture(t)
	master, _ := hostRefs(t, sf)
	before := sf.taskTotal(t)
	resp := sf.getWith(t, t.Context(), base+BasePath+"/hosts/"+master+"/logs.tgz")
	body := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/gzip" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="host0-2025-10-09T08:53:20.000Z-logs.tgz"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	archive := filepath.Join(t.TempDir(), "logs.tgz")
	if err := os.WriteFile(archive, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), tarBin, "tzf", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("tar tzf: %v\n%s", err, out)
	}
	if got, want := strings.Fields(string(out)), []string{"etc/xensource-inventory", "var/log/audit.log", "var/log/xensource.log"}; !slices.Equal(got, want) {
		t.Errorf("members %q, want %q", got, want)
	}
	if n := sf.taskTotal(t); n != before {
		t.Errorf("%d tasks, want %d", n, before)
	}
}

// TestHostFileClientLeaves checks that a client leaving a download
// cancels and destroys the XAPI task.
func TestHostFileClientLeaves(t *testing.T) {
	sf, base := transferFixture(t)
	master, _ := hostRefs(t, sf)
	for range 20000 { // a long audit log: one line per session
		sf.sims[0].Login("root", strings.Repeat("o", 200))
	}
	before := sf.taskTotal(t)
	ctx, cancel := context.WithCancel(t.Context())
	resp := sf.getWith(t, ctx, base+BasePath+"/hosts/"+master+"/audit.txt")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	for sf.taskTotal(t) != before {
		select {
		case <-t.Context().Done():
			t.Fatal("the download task was not destroyed")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// pluginAnswer replaces host.call_plugin of the simulator: it answers out,
// or fails with fault when it is not nil.
func pluginAnswer(sf *simFixture, out string, fault *xapisim.Fault) {
	sf.sims[0].Register("host.call_plugin", xapisim.Method{Params: 4, Async: true, Handler: func(c *xapisim.Call) (any, error) {
		if fault != nil {
			return nil, fault
		}
		return out, nil
	}})
}

func TestHostSMT(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	master, _ := hostRefs(t, sf)
	tests := []struct {
		name    string
		threads string // cpu_info threads_per_core, "" for none (XCP-ng < 8.3)
		plugin  string
		fault   *xapisim.Fault
		status  int
		enabled bool
	}{
		{name: "2 threads per core", threads: "2", status: 200, enabled: true},
		{name: "1 thread per core", threads: "1", status: 200, enabled: false},
		{name: "plugin true", plugin: "true", status: 200, enabled: true},
		{name: "plugin false", plugin: "false", status: 200, enabled: false},
		{name: "plugin missing", fault: xapisim.NewFault("XENAPI_MISSING_PLUGIN", "hyperthreading.py"), status: 200, enabled: false},
		{name: "function missing", fault: xapisim.NewFault("UNKNOWN_XENAPI_PLUGIN_FUNCTION", "get_hyperthreading"), status: 200, enabled: false},
		{name: "host offline", fault: xapisim.NewFault("HOST_OFFLINE", "OpaqueRef:x"), status: http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modifyHost(t, sf, master, func(rec map[string]any) { setStringMap(rec, "cpu_info", "threads_per_core", tt.threads) })
			if tt.threads == "" {
				pluginAnswer(sf, tt.plugin, tt.fault)
			}
			rec := sf.get(t, BasePath+"/hosts/"+master+"/smt")
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != 200 {
				return
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got["enabled"] != tt.enabled {
				t.Errorf("got %v, want {enabled: %v}", got, tt.enabled)
			}
		})
	}
	if rec := sf.get(t, BasePath+"/hosts/nope/smt"); rec.Code != 404 {
		t.Errorf("unknown host: %d", rec.Code)
	}
}

// patchNames are the "name version-release" of a missing_patches answer.
func patchNames(t *testing.T, body []byte) []string {
	t.Helper()
	var pkgs []map[string]any
	if err := json.Unmarshal(body, &pkgs); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	names := []string{}
	for _, p := range pkgs {
		names = append(names, p["name"].(string)+" "+p["version"].(string)+"-"+p["release"].(string))
	}
	return names
}

func TestMissingPatches(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	master, member := hostRefs(t, sf)
	var pool []map[string]any
	sf.getJSON(t, BasePath+"/pools?fields=id", &pool)
	poolURL := BasePath + "/pools/" + pool[0]["id"].(string) + "/missing_patches"
	both := []string{"xapi-core 24.19.2-1.xcpng8.3", "xen-hypervisor 4.17.4-4.xcpng8.3"}

	t.Run("host", func(t *testing.T) {
		rec := sf.get(t, BasePath+"/hosts/"+master+"/missing_patches")
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if got := patchNames(t, rec.Body.Bytes()); !slices.Equal(got, both) {
			t.Errorf("patches %q, want %q", got, both)
		}
	})
	t.Run("busy once", func(t *testing.T) {
		remove := sf.sims[0].InjectFault(xapisim.FaultRule{Method: "host.call_plugin", Fault: xapisim.UpdaterBusy("update"), Count: 1})
		defer remove()
		rec := sf.get(t, BasePath+"/hosts/"+master+"/missing_patches")
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if got := patchNames(t, rec.Body.Bytes()); !slices.Equal(got, both) {
			t.Errorf("patches %q", got)
		}
	})
	t.Run("plugin missing", func(t *testing.T) {
		remove := sf.sims[0].InjectFault(xapisim.FaultRule{Method: "host.call_plugin", Fault: xapisim.NewFault("XENAPI_MISSING_PLUGIN", "updater.py"), Count: 1})
		defer remove()
		if rec := sf.get(t, BasePath+"/hosts/"+master+"/missing_patches"); rec.Code != http.StatusNotImplemented {
			t.Errorf("status %d: %s", rec.Code, rec.Body)
		}
	})
	t.Run("pool union", func(t *testing.T) {
		// host1 has a newer xen: de-duplicated by name, as XO.
		modifyHost(t, sf, member, func(rec map[string]any) { setStringMap(rec, "software_version", "xen", "4.17.5-1") })
		rec := sf.get(t, poolURL)
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		got := patchNames(t, rec.Body.Bytes())
		if len(got) != 2 || got[0] != both[0] || !strings.HasPrefix(got[1], "xen-hypervisor ") {
			t.Errorf("patches %q", got)
		}
	})
	t.Run("pool with a failing host", func(t *testing.T) {
		modifyHost(t, sf, member, func(rec map[string]any) { setStringMap(rec, "software_version", "product_brand", "XenServer") })
		rec := sf.get(t, poolURL)
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if got := patchNames(t, rec.Body.Bytes()); !slices.Equal(got, both) {
			t.Errorf("patches %q, want host0's %q", got, both)
		}
	})
	t.Run("XenServer host", func(t *testing.T) {
		if rec := sf.get(t, BasePath+"/hosts/"+member+"/missing_patches"); rec.Code != http.StatusNotImplemented {
			t.Errorf("status %d: %s", rec.Code, rec.Body)
		}
	})
	t.Run("XenServer pool", func(t *testing.T) {
		modifyHost(t, sf, master, func(rec map[string]any) { setStringMap(rec, "software_version", "product_brand", "XenServer") })
		if rec := sf.get(t, poolURL); rec.Code != http.StatusNotImplemented {
			t.Errorf("status %d: %s", rec.Code, rec.Body)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		for _, u := range []string{BasePath + "/hosts/nope/missing_patches", BasePath + "/pools/nope/missing_patches"} {
			if rec := sf.get(t, u); rec.Code != 404 {
				t.Errorf("%s: %d", u, rec.Code)
			}
		}
	})
}

func TestHostRoutesNeedAuthentication(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	master, _ := hostRefs(t, sf)
	var pool []map[string]any
	sf.getJSON(t, BasePath+"/pools?fields=id", &pool)
	vm := sf.idOf(t, "vms", "vm1")
	for _, path := range []string{
		"/hosts/" + master + "/audit.txt", "/hosts/" + master + "/logs.tgz", "/hosts/" + master + "/smt",
		"/hosts/" + master + "/missing_patches", "/pools/" + pool[0]["id"].(string) + "/missing_patches",
		"/dashboard", "/pools/" + pool[0]["id"].(string) + "/dashboard", "/vms/" + vm + "/dashboard",
	} {
		t.Run(path, func(t *testing.T) {
			if rec := sf.do(t, "GET", BasePath+path, nil); rec.Code != http.StatusUnauthorized {
				t.Errorf("status %d: %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   bool
	}{
		{"none", nil, false},
		{"gzip", []string{"gzip"}, true},
		{"x-gzip with q", []string{"br;q=1, x-gzip;q=0.1"}, true},
		{"second header", []string{"br", "GZip"}, true},
		{"identity", []string{"identity, deflate"}, false},
		{"gzip inside a name", []string{"notgzip"}, false},
		{"gzip refused", []string{"gzip;q=0, identity"}, false},
		{"gzip q=0.000 refused", []string{"gzip; q=0.000"}, false},
		{"x-gzip refused, gzip not", []string{"x-gzip;q=0", "gzip;q=0.5"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := acceptsGzip(tt.values); got != tt.want {
				t.Errorf("got %v", got)
			}
		})
	}
}

func TestMergePatches(t *testing.T) {
	a := []map[string]any{{"name": "xen", "version": "1"}, {"name": "xapi", "version": "1"}}
	b := []map[string]any{{"name": "xen", "version": "2"}, {"id": "p1", "name": "xen"}, {"name": "kernel"}}
	got := mergePatches(a, b)
	want := []string{"xen 2", "xapi 1", "xen <nil>", "kernel <nil>"}
	var gotS []string
	for _, p := range got {
		gotS = append(gotS, p["name"].(string)+" "+func() string {
			if v, ok := p["version"]; ok {
				return v.(string)
			}
			return "<nil>"
		}())
	}
	if !slices.Equal(gotS, want) {
		t.Errorf("got %q, want %q", gotS, want)
	}
}

func TestParseUpdates(t *testing.T) {
	tests := []struct {
		name, out string
		n         int
		fails     bool
	}{
		{"list", `[{"name":"a"},{"name":"b"}]`, 2, false},
		{"empty", `[]`, 0, false},
		{"error", `{"error":"yum failed"}`, 0, true},
		{"not JSON", `Traceback`, 0, true},
		{"not objects", `["a"]`, 0, true},
		{"object without error", `{}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUpdates(tt.out)
			if (err != nil) != tt.fails || len(got) != tt.n {
				t.Errorf("got %v, %v", got, err)
			}
		})
	}
}

func FuzzParseUpdates(f *testing.F) {
	for _, s := range []string{`[{"name":"a","version":"1"}]`, `{"error":"x"}`, `[`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pkgs, err := parseUpdates(s)
		if err == nil && pkgs == nil {
			t.Errorf("%q: no error and no list", s)
		}
	})
}
