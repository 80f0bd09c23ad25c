package handlers

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// FuzzWriteBodies feeds arbitrary bodies to the parsers of PATCH and
// action bodies: they must not panic, and what they accept must be
// well-typed.
func FuzzWriteBodies(f *testing.F) {
	for _, seed := range []string{
		`{"name_label": "x", "name_description": "", "tags": ["a", "b/c"]}`,
		`{"nameLabel": "x", "name_label": "y"}`,
		`{"tags": null}`, `{"tags": [1]}`, `[]`, `"x"`, `{`, `{} {}`, `{"power_state": "Halted"}`,
		`{"name_label": "\u00e9\ud800"}`, `{"hostId": "h", "name_label": 3}`,
	} {
		f.Add([]byte(seed))
	}
	vms := writable{name: "vms", kind: "VM", class: "VM", camel: true}
	obj := map[string]any{"power_state": "Running", "name_label": "vm"}
	acts := vmActions()
	snapshot := acts[slices.IndexFunc(acts, func(a action) bool { return a.name == "snapshot" })]
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := parseJSONObject(data)
		if err != nil {
			return
		}
		sets, err := parsePatch(vms, obj, body)
		if err == nil {
			for _, s := range sets {
				if !strings.HasPrefix(s.method, "VM.set_") {
					t.Fatalf("setter %q", s.method)
				}
				switch v := s.value.(type) {
				case string:
				case []string:
					for _, tag := range v {
						if tag == "" {
							t.Fatal("empty tag accepted")
						}
					}
				default:
					t.Fatalf("value %T", v)
				}
			}
		}
		args, _, err := validateArgs(snapshot, nil, body)
		if err == nil {
			if _, err := json.Marshal(args); err != nil {
				t.Fatal(err)
			}
			if v, ok := args["name_label"]; ok && v == "" {
				t.Fatal("empty name_label accepted")
			}
		}
	})
}
