package handlers

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// lodashVectors are testdata/lodash/vectors.json, produced by lodash itself
// (testdata/lodash/gen.js).
type lodashVectors struct {
	Lodash string `json:"lodash"`
	ToPath []struct {
		In  string   `json:"in"`
		Out []string `json:"out"`
	} `json:"toPath"`
	Pick []struct {
		Fields string   `json:"fields"`
		Out    []string `json:"out"`
	} `json:"pick"`
	Objects []map[string]any `json:"objects"`
}

func readLodashVectors(t testing.TB) lodashVectors {
	t.Helper()
	data, err := os.ReadFile("testdata/lodash/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v lodashVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.ToPath) == 0 || len(v.Pick) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func TestStringToPathLodash(t *testing.T) {
	v := readLodashVectors(t)
	for _, tc := range v.ToPath {
		t.Run(tc.In, func(t *testing.T) {
			got := stringToPath(tc.In)
			want := tc.Out
			if !isDeepProp(tc.In) {
				want = []string{tc.In} // castPath: keys are not parsed
				got = []string{tc.In}
			}
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("stringToPath(%q) = %q, lodash %s: %q", tc.In, got, v.Lodash, want)
			}
		})
	}
}

// pickDeviations are the known differences from lodash: members inherited
// from JavaScript prototypes (num.toFixed is a function, which lodash puts
// in an object that JSON.stringify then shows as {}) do not exist in decoded
// JSON.
var pickDeviations = map[string][]string{
	"num.toFixed": {`{}`, `{}`},
}

func TestPickLodash(t *testing.T) {
	v := readLodashVectors(t)
	for _, tc := range v.Pick {
		t.Run(tc.Fields, func(t *testing.T) {
			f := ParseFields(tc.Fields)
			want := tc.Out
			if dev, ok := pickDeviations[tc.Fields]; ok {
				want = dev
			}
			for i, obj := range v.Objects {
				got := string(appendPickNode(nil, f.pick(obj), false, 0))
				if got != want[i] {
					t.Errorf("pick(object %d, %q) = %s, want %s (lodash %s: %s)", i, tc.Fields, got, want[i], v.Lodash, tc.Out[i])
				}
			}
		})
	}
}

func TestStringToPath(t *testing.T) {
	// lodash's own toPath tests, for the cases lodash's regexp makes subtle.
	tests := []struct {
		in   string
		want []string
	}{
		{"a..b", []string{"a", "", "b"}},
		{"a[].b", []string{"a", "", "b"}},
		{"..a", []string{"", "", "a"}},
		{"[][].a", []string{"", "", "a"}},
		{"a...b", []string{"a", "", "", "b"}},
		{"a..", []string{"a", "", ""}},
		{"a[][]", []string{"a", "", ""}},
		{`a["b\"c"]`, []string{"a", `b"c`}},
		{`a['\\']`, []string{"a", `\`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := stringToPath(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("stringToPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		all   bool
		names []string
	}{
		{"star", "*", true, []string{}},
		{"star among others", "*,id", false, []string{"*", "id"}},
		{"no trimming", "a, b", false, []string{"a", " b"}},
		{"empty", "", false, []string{""}},
		{"paths", "CPUs.number,tags[0]", false, []string{"CPUs.number", "tags[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ParseFields(tt.in)
			if f.All != tt.all || !slices.Equal(f.Names(), tt.names) {
				t.Errorf("ParseFields(%q) = all %v %q, want all %v %q", tt.in, f.All, f.Names(), tt.all, tt.names)
			}
		})
	}
}

func FuzzFields(f *testing.F) {
	for _, s := range []string{"a.b", "tags[0]", `a["b.c"].d`, "a[-1.5]", "..", "[]", "*", "a,b,c.d", `a['\\']`, "memory.dynamic.1"} {
		f.Add(s)
	}
	obj := map[string]any{
		"a":    map[string]any{"b": []any{1.0, map[string]any{"c": "x"}}, "b.c": true},
		"tags": []any{"t1", "t2"}, "memory": map[string]any{"dynamic": []any{1.0, 2.0}},
		"s": "héllo", "n": nil,
	}
	f.Fuzz(func(t *testing.T, s string) {
		fs := ParseFields(s)
		if fs.All {
			return
		}
		if got := len(fs.Names()); got != strings.Count(s, ",")+1 {
			t.Fatalf("%d fields for %q", got, s)
		}
		for _, fl := range fs.list {
			for _, k := range fl.path {
				if strings.ContainsAny(k, "[]") && !strings.ContainsAny(fl.raw, `"'`) {
					t.Fatalf("path element %q of %q holds a bracket outside quotes", k, fl.raw)
				}
			}
		}
		out := appendPickNode(nil, fs.pick(obj), false, 0)
		if !json.Valid(out) {
			t.Fatalf("pick(%q) produced invalid JSON: %s", s, out)
		}
		pretty := appendPickNode(nil, fs.pick(obj), true, 1)
		if !json.Valid(pretty) {
			t.Fatalf("pick(%q) produced invalid pretty JSON: %s", s, pretty)
		}
	})
}
