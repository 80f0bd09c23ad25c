package handlers

import (
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapisim"
)

// TestListFromTables checks that collections read from the pools' columns
// (writeTables) answer byte for byte what WriteCollection answers from the
// objects themselves, over two pools.
func TestListFromTables(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default(), {VMs: 9, PoolName: "other"}})
	tests := []struct{ name, collection, kind, query string }{
		{"URLs", "vms", "VM", ""},
		{"filter only", "vms", "VM", "filter=power_state:Running"},
		{"fields and filter", "vms", "VM", "fields=name_label,power_state&filter=" + url.QueryEscape("power_state:Running name_label:/^vm[0-4]/")},
		{"bench filter", "vms", "VM", "fields=name_label,power_state&filter=" + url.QueryEscape("power_state:Running !name_label:/^vm1/ CPUs:number:>=1")},
		{"missing and null", "vms", "VM", "fields=name_label,nope,startTime,id&filter=" + url.QueryEscape("!nope:x |(startTime:>0 !startTime?)")},
		{"chains", "vms", "VM", "fields=uuid&filter=" + url.QueryEscape("memory:size:>1 $VBDs:length:>=1 other:nope:x|(CPUs:max:2 tags:length:0)")},
		{"chain of missing", "vms", "VM", "filter=" + url.QueryEscape("!nope:deeper:x")},
		{"bare words", "vms", "VM", "fields=name_label&filter=" + url.QueryEscape("vm3 |(Halted power_state:Paused)")},
		{"href and url picked", "vms", "VM", "fields=href,url,name_label&filter=power_state:Halted"},
		{"many fields", "vms", "VM", "fields=name_label,power_state,uuid,type,id,tags&filter=power_state:Halted"},
		{"nested fields", "vms", "VM", "fields=name_label,CPUs.number&filter=power_state:Running"},
		{"all fields", "vms", "VM", "fields=*&filter=name_label:vm2"},
		{"ndjson", "vms", "VM", "ndjson&fields=name_label,power_state&filter=power_state:Running"},
		{"markdown", "vms", "VM", "markdown&fields=name_label,power_state&filter=power_state:Running"},
		{"limit", "vms", "VM", "limit=2&fields=name_label&filter=power_state:Running"},
		{"limit with the bench filter", "vms", "VM", "limit=3&fields=name_label,power_state&filter=" + url.QueryEscape("power_state:Running !name_label:/^vm1/ CPUs:number:>=1")},
		{"or, not and whole-object terms", "vms", "VM", "fields=name_label&filter=" + url.QueryEscape("|(power_state:Halted !CPUs:number:<2 vm3) !(name_label:vm5 | (vm7))")},
		{"not of an or", "vms", "VM", "fields=name_label&filter=" + url.QueryEscape("!|(power_state:Running name_label:/2$/) CPUs:number:>=1")},
		{"no match", "vms", "VM", "fields=name_label&filter=power_state:Nowhere"},
		{"hosts", "hosts", "host", "fields=name_label,enabled&filter=enabled?"},
	}
	params := []string{"fields", "filter", "limit", "ndjson", "markdown"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := BasePath + "/" + tt.collection + "?" + tt.query
			got := sf.get(t, target)
			if got.Code != 200 {
				t.Fatalf("%d %s", got.Code, got.Body)
			}
			req := httptest.NewRequest("GET", target, nil)
			q, err := ParseQuery(req.URL.Query(), params)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := sf.pools.Objects(t.Context(), tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			want := httptest.NewRecorder()
			if err := WriteCollection(want, req, q, slices.Values(objs), HrefIn(BasePath+"/"+tt.collection)); err != nil {
				t.Fatal(err)
			}
			if got.Body.String() != want.Body.String() {
				t.Errorf("GET %s:\n%s\nWriteCollection:\n%s", target, got.Body, want.Body)
			}
			if cl := got.Header().Get("Content-Length"); cl != strconv.Itoa(got.Body.Len()) {
				t.Errorf("Content-Length %q for a body of %d bytes", cl, got.Body.Len())
			}
			if got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("Content-Type %q, want %q", got.Header().Get("Content-Type"), want.Header().Get("Content-Type"))
			}
		})
	}
}

// TestListFromTablesCached checks the items a collection route keeps
// (itemCache) over a table large enough to be cached: repeated reads
// answer what WriteCollection answers, and a write through XAPI shows in
// the next read (a new table, new columns: no stale item).
func TestListFromTablesCached(t *testing.T) {
	m := xapisim.Default()
	m.VMs = itemCacheMinRows + 50
	sf := newSimFixture(t, []xapisim.Model{m})
	vm := sf.idOf(t, "vms", "vm7")
	ref := sf.ref(t, "VM", vm)
	// Queries, and whether their answer shows vm7's name.
	queries := []struct {
		query    string
		showsVM7 bool
	}{
		{"fields=name_label,power_state&filter=" + url.QueryEscape("power_state:Running !name_label:/^vm1/ CPUs:number:>=1"), false},
		{"ndjson&fields=name_label,power_state&filter=" + url.QueryEscape("!name_label:/^vm1/"), true},
		{"filter=" + url.QueryEscape("name_label:/^vm[0-7]/"), false},
		{"fields=power_state,name_label", true},
	}
	check := func(t *testing.T, query, wantIn string) {
		t.Helper()
		target := BasePath + "/vms?" + query
		got := sf.get(t, target)
		if got.Code != 200 {
			t.Fatalf("%d %s", got.Code, got.Body)
		}
		req := httptest.NewRequest("GET", target, nil)
		q, err := ParseQuery(req.URL.Query(), collectionParams)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := sf.pools.Objects(t.Context(), "VM")
		if err != nil {
			t.Fatal(err)
		}
		want := httptest.NewRecorder()
		if err := WriteCollection(want, req, q, slices.Values(objs), HrefIn(BasePath+"/vms")); err != nil {
			t.Fatal(err)
		}
		if got.Body.String() != want.Body.String() {
			t.Fatalf("GET %s: %d bytes differ from WriteCollection's %d", target, got.Body.Len(), want.Body.Len())
		}
		if !strings.Contains(got.Body.String(), wantIn) {
			t.Fatalf("GET %s: no %q in the answer", target, wantIn)
		}
	}
	for i, name := range []string{"vm7", "vm7 renamed", "vm7 \"quoted\""} {
		if i > 0 {
			sf.call(t, "VM.set_name_label", ref, name)
		}
		for _, tt := range queries {
			for range 3 { // the second read builds the block, the third reads it
				want := ""
				if tt.showsVM7 {
					want = strings.Trim(string(appendString(nil, name)), `"`)
				}
				check(t, tt.query, want)
			}
		}
	}
}
