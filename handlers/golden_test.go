package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapisim"
)

// TestCollectionGolden checks whole answers of representative queries on
// the simulated pool (deterministic: seeded uuids, a fixed clock) against
// testdata/sim/*.golden; go test -update rewrites them.
func TestCollectionGolden(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	vm0 := sf.idOf(t, "vms", "vm0")
	tests := []struct {
		name        string
		target      string
		contentType string
	}{
		{"running VMs", "/vms?fields=name_label,power_state,CPUs.number&filter=" + url.QueryEscape("power_state:Running"), contentJSON},
		{"VM URLs limit 2", "/vms?limit=2", contentJSON},
		{"hosts ndjson", "/hosts?fields=name_label,address,power_state&ndjson", contentNDJSON},
		{"SRs markdown", "/srs?fields=name_label,SR_type,size&markdown=true", contentMarkdown},
		{"regexp and negation", "/vms?fields=name_label&filter=" + url.QueryEscape("name_label:/^vm[0-2]$/ !power_state:Halted"), contentJSON},
		{"one VM", "/vms/" + vm0, contentJSON},
		{"one VM fields", "/vms/" + vm0 + "?fields=name_label,memory.size,$VBDs[0]", contentJSON},
		{"VM disks", "/vms/" + vm0 + "/vdis?fields=name_label,size,$SR", contentJSON},
		{"pool", "/pools?fields=*", contentJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sf.get(t, BasePath+tt.target)
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != tt.contentType {
				t.Fatalf("%d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			golden(t, goldenName("sim", tt.name, "golden"), rec.Body.Bytes())
		})
	}
}

// TestFilterErrors checks that a filter that does not parse is a 400
// saying where parsing failed.
func TestFilterErrors(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	tests := []struct {
		name, filter, want string
	}{
		{"unbalanced paren", "foo)", "parse error: expected end of input at position 3"},
		{"unterminated group", "(power_state:Running", "position"},
		{"dangling colon", "power_state:", "position"},
		{"lone negation", "!", "position"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, coll := range []string{"vms", "tasks", "vms/" + sf.idOf(t, "vms", "vm0") + "/vdis"} {
				rec := sf.get(t, BasePath+"/"+coll+"?filter="+url.QueryEscape(tt.filter))
				var body errorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatal(err)
				}
				if rec.Code != http.StatusBadRequest || !strings.Contains(body.Error, tt.want) || body.Data["stringToParse"] != tt.filter {
					t.Errorf("%s: %d %s", coll, rec.Code, rec.Body)
				}
			}
		})
	}
}
