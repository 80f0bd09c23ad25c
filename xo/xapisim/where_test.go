package xapisim

import (
	"testing"
)

func TestGetAllRecordsWhere(t *testing.T) {
	srv := NewServer(t, Default())
	s := srv.Session()
	var a, b string
	srv.DB.Write(func(tx *Tx) error {
		ra := NewRecord("VM")
		ra["name_label"] = "where-a"
		ra["VCPUs_max"] = int64(4)
		ra["tags"] = []string{"x"}
		a = tx.Create("VM", ra)
		rb := NewRecord("VM")
		rb["name_label"] = "where-b"
		rb["is_a_template"] = true
		b = tx.Create("VM", rb)
		return nil
	})
	tests := []struct {
		expr string
		want []string // among a and b
	}{
		{`field "name__label" = "where-a"`, []string{a}},
		{`"where-b" = field "name__label"`, []string{b}},
		{`field "name__label"="where-a" or field "name__label"="where-b"`, []string{a, b}},
		{`field "is_a_template" = "true" and field "name__label" = "where-b"`, []string{b}},
		{`not (field "name__label" = "where-a") and field "VCPUs_max" = "0" and field "name__label" = "where-b"`, []string{b}},
		{`field "VCPUs_max" = "4" and field "name__label" = "where-a"`, []string{a}},
		{`field "tags" = "('x')"`, []string{a}},
		{`false`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			res, err := srv.Call(t.Context(), "VM.get_all_records_where", s, tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			got := res.(map[string]any)
			for _, ref := range []string{a, b} {
				_, in := got[ref]
				want := false
				for _, w := range tc.want {
					want = want || w == ref
				}
				if in != want {
					t.Fatalf("%s in result = %v, want %v", ref, in, want)
				}
			}
		})
	}
	res, err := srv.Call(t.Context(), "VM.get_all_records_where", s, "true")
	if err != nil || len(res.(map[string]any)) < 2 {
		t.Fatalf("true: %v %v", res, err)
	}
	for _, bad := range []string{`field "x" =`, `"a" "b"`, `(true`, `field = "x"`, `"unterminated`, `?`} {
		_, err := srv.Call(t.Context(), "VM.get_all_records_where", s, bad)
		wantFault(t, err, "INTERNAL_ERROR")
	}
}

func FuzzWhere(f *testing.F) {
	f.Add(`not (field "name__label" = "a") and true or false`)
	f.Add(`((("x" = field "y")))`)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseWhere(s)
		if err == nil {
			e.eval(Record{"name_label": "a", "y": "x"})
		}
	})
}
