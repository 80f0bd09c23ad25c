package filter

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

// tableOf returns the map objects of values, with the columns of plan's
// paths over them.
func tableOf(plan *Plan, values []any) ([]map[string]any, []*Column) {
	var objs []map[string]any
	for _, v := range values {
		if m, ok := v.(map[string]any); ok {
			objs = append(objs, m)
		}
	}
	cols := make([]*Column, len(plan.Paths()))
	for j, path := range plan.Paths() {
		cols[j] = NewColumn(path, objs)
	}
	return objs, cols
}

// TestPlanDifferential checks that a Plan matches the map objects of the
// differential corpus exactly as complex-matcher 1.1.1 does (the recorded
// answers of TestDifferential).
func TestPlanDifferential(t *testing.T) {
	filters := append(append(append([]string{}, handFilters...), randomFilters(4000)...), grammarFilters(4000)...)
	var objects []any
	if err := json.Unmarshal([]byte(differentialObjects), &objects); err != nil {
		t.Fatal(err)
	}
	res := runNode(t, filters, objects, false)
	if len(res.Results) != len(filters) {
		t.Fatalf("node returned %d results for %d filters", len(res.Results), len(filters))
	}
	checked := 0
	for i, want := range res.Results {
		n, err := Parse(filters[i])
		if err != nil || !want.OK {
			continue
		}
		plan := NewPlan(n)
		objs, cols := tableOf(plan, objects)
		m := plan.Matcher(cols)
		row := 0
		var wantRows []int32
		for j, o := range objects {
			if _, ok := o.(map[string]any); !ok {
				continue
			}
			if got := m.Match(row, objs[row]); got != want.Matches[j] {
				t.Errorf("NewPlan(%q) Match(object %d) = %v, want %v (columns %v)", filters[i], j, got, want.Matches[j], plan.Paths())
			}
			if want.Matches[j] {
				wantRows = append(wantRows, int32(row))
			}
			row++
		}
		// Rows, with rows already in its slice, which it must keep.
		got := plan.Matcher(cols).Rows(objs, []int32{-1})
		if !slices.Equal(got[1:], wantRows) || got[0] != -1 {
			t.Errorf("NewPlan(%q) Rows = %v, want [-1] + %v", filters[i], got, wantRows)
		}
		checked++
	}
	if checked < len(filters)/2 {
		t.Fatalf("only %d of %d filters checked", checked, len(filters))
	}
}

func TestPlanPaths(t *testing.T) {
	tests := []struct {
		name, filter string
		want         []string
	}{
		{"none", "foo", nil},
		{"property", "power_state:Running", []string{"power_state"}},
		{"and shares columns", "power_state:Running !power_state:Halted name_label:/^a/", []string{"power_state", "name_label"}},
		{"chain", "CPUs:number:>=1", []string{"CPUs:number"}},
		{"chain to truthy", "other:xo?", []string{"other:xo"}},
		{"truthy", "auto_poweron?", []string{"auto_poweron"}},
		{"under or and not", "|(a:1 !(b:2 c?))", []string{"a", "b", "c"}},
		{"value-level or stops the chain", "CPUs:|(number:2 max:4)", []string{"CPUs"}},
		{"quoted names", `"a:b":x a:b:x "1":y`, []string{`"a:b"`, "a:b", `"1"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range NewPlan(n).Paths() {
				got = append(got, p.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Paths() = %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("Paths() = %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestColumnValue(t *testing.T) {
	objs := []map[string]any{
		{"a": map[string]any{"b": "x"}},
		{"a": map[string]any{"b": nil}},
		{"a": map[string]any{}},
		{"a": nil},
		{},
		{"a": []any{"p", "q"}},
		{"a": "str"},
	}
	tests := []struct {
		name string
		path Path
		want []any // errAbsent: no value
	}{
		{"top", Path{"a"}, []any{"map", "map", "map", nil, errAbsent, "slice", "str"}},
		{"nested", Path{"a", "b"}, []any{"x", nil, errAbsent, errAbsent, errAbsent, errAbsent, errAbsent}},
		{"length", Path{"a", "length"}, []any{errAbsent, errAbsent, errAbsent, errAbsent, errAbsent, 2, 3}},
		{"index", Path{"a", "1"}, []any{errAbsent, errAbsent, errAbsent, errAbsent, errAbsent, "q", "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewColumn(tt.path, objs)
			if c.Len() != len(objs) {
				t.Fatalf("Len() = %d", c.Len())
			}
			for i, want := range tt.want {
				v, ok := c.Value(i)
				switch want {
				case errAbsent:
					if ok {
						t.Errorf("Value(%d) = %v, want none", i, v)
					}
					continue
				case "map":
					_, isMap := v.(map[string]any)
					if !ok || !isMap {
						t.Errorf("Value(%d) = %v, %v, want a map", i, v, ok)
					}
					continue
				case "slice":
					_, isSlice := v.([]any)
					if !ok || !isSlice {
						t.Errorf("Value(%d) = %v, %v, want a slice", i, v, ok)
					}
					continue
				}
				if !ok || v != want {
					t.Errorf("Value(%d) = %#v, %v, want %#v", i, v, ok, want)
				}
			}
		})
	}
}

// errAbsent marks an expected missing value in TestColumnValue.
var errAbsent = errors.New("absent")

// FuzzPlan checks that a Plan matches the sample objects exactly as its
// filter does.
func FuzzPlan(f *testing.F) {
	for _, s := range handFilters {
		f.Add(s)
	}
	var objects []any
	if err := json.Unmarshal([]byte(differentialObjects), &objects); err != nil {
		f.Fatal(err)
	}
	objects = append(objects, decodeJSON(f, sampleVM))
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		plan := NewPlan(n)
		objs, cols := tableOf(plan, objects)
		m := plan.Matcher(cols)
		var want []int32
		for i, o := range objs {
			got, match := m.Match(i, o), n.Match(o)
			if got != match {
				t.Fatalf("NewPlan(%q) Match(%v) = %v, Node.Match = %v", s, o, got, match)
			}
			if match {
				want = append(want, int32(i))
			}
		}
		if got := plan.Matcher(cols).Rows(objs, nil); !slices.Equal(got, want) {
			t.Fatalf("NewPlan(%q) Rows = %v, Node.Match matches %v", s, got, want)
		}
	})
}

// BenchmarkPlan runs the filters of BenchmarkMatch as Plans over columns
// built beforehand (as xo caches them), a row at a time (Matcher.Match)
// and a step at a time (Matcher.Rows): ns/op is one ?filter= over a large
// pool, to compare with BenchmarkMatch. cpu-ns/op is the process's CPU
// time, which machine load inflates much less.
func BenchmarkPlan(b *testing.B) {
	vms := benchVMs(benchVMCount)
	for _, bf := range benchFilters {
		n, err := Parse(bf.filter)
		if err != nil {
			b.Fatal(err)
		}
		plan := NewPlan(n)
		objs, cols := tableOf(plan, vms)
		want := countMatches(n, vms)
		b.Run(bf.name+"/Match", func(b *testing.B) {
			b.ReportAllocs()
			matches := 0
			cpu := processCPUTime()
			for b.Loop() {
				matches = 0
				m := plan.Matcher(cols)
				for i, o := range objs {
					if m.Match(i, o) {
						matches++
					}
				}
			}
			b.ReportMetric(float64(processCPUTime()-cpu)/float64(b.N), "cpu-ns/op")
			if matches != want {
				b.Fatalf("%d matches, Match finds %d", matches, want)
			}
		})
		b.Run(bf.name+"/Rows", func(b *testing.B) {
			b.ReportAllocs()
			var rows []int32
			cpu := processCPUTime()
			for b.Loop() {
				rows = plan.Matcher(cols).Rows(objs, rows[:0])
			}
			b.ReportMetric(float64(processCPUTime()-cpu)/float64(b.N), "cpu-ns/op")
			if len(rows) != want {
				b.Fatalf("%d rows, Match finds %d", len(rows), want)
			}
		})
	}
}

// BenchmarkNewColumn builds the name_label column of 10,000 VMs: the cost
// of the first filtered read after a VM changed.
func BenchmarkNewColumn(b *testing.B) {
	vms := benchVMs(benchVMCount)
	objs := make([]map[string]any, len(vms))
	for i, v := range vms {
		objs[i] = v.(map[string]any)
	}
	for _, path := range []Path{{"name_label"}, {"power_state"}, {"CPUs", "number"}} {
		b.Run(path.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NewColumn(path, objs)
			}
		})
	}
}

// TestPlanOverVMs compares Plans with Match over 600 generated VMs: a
// column of unique names (too many distinct strings for a dictionary) and
// columns of few distinct strings (dictionary-encoded, matched once per
// distinct string), read by several terms.
func TestPlanOverVMs(t *testing.T) {
	vms := benchVMs(600)
	filters := []string{
		"power_state:Running !power_state:Halted name_label:/^vm-00[0-4]/",
		"|(power_state:Paused power_state:/^s/i) !name_label:*db",
		"name_label:vm-0001 boot:firmware:uefi",
		"boot:firmware:>1 !high_availability? other:linux_template:true",
		"power_state:!|(Running Halted) CPUs:number:>=2",
	}
	for _, bf := range benchFilters {
		filters = append(filters, bf.filter)
	}
	for _, f := range filters {
		n, err := Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		plan := NewPlan(n)
		objs, cols := tableOf(plan, vms)
		m := plan.Matcher(cols)
		matched := 0
		for i, o := range objs {
			got, want := m.Match(i, o), n.Match(o)
			if got != want {
				t.Fatalf("%q: Matcher.Match(%v) = %v, Node.Match = %v", f, o["name_label"], got, want)
			}
			if got {
				matched++
			}
		}
		t.Logf("%q: %d matches", f, matched)
	}
	objs := make([]map[string]any, len(vms))
	for i, v := range vms {
		objs[i] = v.(map[string]any)
	}
	if c := NewColumn(Path{"name_label"}, objs); c.codes != nil {
		t.Errorf("the name_label column has a dictionary of %d strings", len(c.dict))
	}
	if c := NewColumn(Path{"power_state"}, objs); c.codes == nil || len(c.dict) != 4 {
		t.Errorf("the power_state column has no dictionary of 4 strings")
	}
}
