package xapisim

import (
	"testing"
	"time"
)

func TestNewRecord(t *testing.T) {
	tests := []struct {
		class, field string
		want         any
	}{
		{"VM", "power_state", "Halted"},
		{"VM", "resident_on", NullRef},
		{"VM", "memory_static_max", int64(0)},
		{"VM", "is_a_template", false},
		{"task", "progress", float64(0)},
		{"task", "subtask_of", NullRef},
		{"task", "backtrace", "()"},
		{"task", "created", epoch},
		{"Bond", "mode", "balance-slb"},
		{"VLAN", "tag", int64(-1)},
		{"network", "MTU", int64(1500)},
	}
	for _, tc := range tests {
		t.Run(tc.class+"."+tc.field, func(t *testing.T) {
			rec := NewRecord(tc.class)
			got, ok := rec[tc.field]
			if !ok {
				t.Fatalf("field %s missing", tc.field)
			}
			if tt, ok := got.(time.Time); ok {
				if !tt.Equal(tc.want.(time.Time)) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestNewRecordEveryFieldTyped(t *testing.T) {
	for _, class := range SchemaClasses() {
		c, _ := Schema(class)
		rec := NewRecord(class)
		if len(rec) != len(c.Fields) {
			t.Errorf("%s: %d fields, want %d", class, len(rec), len(c.Fields))
		}
		for _, f := range c.Fields {
			v := rec[f.Name]
			var ok bool
			switch f.Kind {
			case KindString, KindEnum, KindRef:
				_, ok = v.(string)
			case KindInt:
				_, ok = v.(int64)
			case KindFloat:
				_, ok = v.(float64)
			case KindBool:
				_, ok = v.(bool)
			case KindDateTime:
				_, ok = v.(time.Time)
			case KindStringSet:
				s, isSet := v.([]string)
				ok = isSet && s != nil
			case KindIntSet:
				_, ok = v.([]int64)
			case KindStringMap:
				m, isMap := v.(map[string]string)
				ok = isMap && m != nil
			case KindIntMap:
				_, ok = v.(map[string]int64)
			case KindStringSetMap:
				_, ok = v.(map[string][]string)
			case KindRecord:
				ok = v == nil
			}
			if !ok {
				t.Errorf("%s.%s (%s): value %#v has the wrong type", class, f.Name, f.Type, v)
			}
		}
	}
}

func TestNewRecordIsACopy(t *testing.T) {
	a := NewRecord("VM")
	a["other_config"].(map[string]string)["k"] = "v"
	a["tags"] = append(a["tags"].([]string), "x")
	b := NewRecord("VM")
	if len(b["other_config"].(map[string]string)) != 0 || len(b["tags"].([]string)) != 0 {
		t.Fatal("NewRecord shares defaults between records")
	}
}
