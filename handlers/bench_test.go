package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/xorest/xorest/xo/xapisim"
)

// benchFilter and benchFields are the query of `make bench`'s rest section.
const (
	benchFilter = "power_state:Running !name_label:/^vm1/ CPUs:number:>=1"
	benchFields = "name_label,power_state"
)

// BenchmarkCollection measures warm collection reads over the 10,000 VMs
// of xapisim.Large, through the whole handler (authentication, the
// catch-up with XAPI that every read does, filtering, picking, encoding),
// without the network. cpu-ns/op is the CPU time of the whole process
// (the simulator's included), which machine load inflates much less than
// ns/op.
func BenchmarkCollection(b *testing.B) {
	sf := newSimFixture(b, []xapisim.Model{xapisim.Large()})
	tests := []struct{ name, target string }{
		{"fields+filter", "/vms?fields=name_label,power_state&filter=" + url.QueryEscape("power_state:Running name_label:/^vm[0-4]/")},
		{"make bench", "/vms?fields=" + benchFields + "&filter=" + url.QueryEscape(benchFilter)},
		{"fields+filter ndjson", "/vms?ndjson&fields=name_label,power_state,CPUs.number&filter=" + url.QueryEscape("power_state:Running")},
		{"URLs", "/vms"},
		{"whole objects", "/vms?fields=*&limit=1000"},
		{"one VM", "/vms/" + sf.idOf(b, "vms", "vm42")},
	}
	for _, tt := range tests {
		target := BasePath + tt.target
		if rec := sf.get(b, target); rec.Code != http.StatusOK { // warm
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
		b.Run(tt.name, func(b *testing.B) {
			var bytes int
			cpu := processCPUTime()
			for b.Loop() {
				rec := sf.get(b, target)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d", rec.Code)
				}
				bytes = rec.Body.Len()
			}
			b.ReportMetric(float64(processCPUTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.SetBytes(int64(bytes))
		})
	}
}

// BenchmarkTableQuery measures what a warm collection read does after
// the catch-up with XAPI: filtering the 10,000 VMs of xapisim.Large
// through their columns, picking and encoding, into a writer that
// discards the bytes (discardWriter).
func BenchmarkTableQuery(b *testing.B) {
	sf := newSimFixture(b, []xapisim.Model{xapisim.Large()})
	tests := []struct{ name, query string }{
		{"make bench", "fields=" + benchFields + "&filter=" + url.QueryEscape(benchFilter)},
		{"make bench ndjson", "ndjson&fields=" + benchFields + "&filter=" + url.QueryEscape(benchFilter)},
		{"URLs", ""},
	}
	for _, tt := range tests {
		values, err := url.ParseQuery(tt.query)
		if err != nil {
			b.Fatal(err)
		}
		q, err := ParseQuery(values, collectionParams)
		if err != nil {
			b.Fatal(err)
		}
		tq := newTableQuery(q)
		tables, err := sf.pools.Tables(context.Background(), "VM", tq.paths)
		if err != nil {
			b.Fatal(err)
		}
		r := httptest.NewRequest("GET", BasePath+"/vms?"+tt.query, nil)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			w := &discardWriter{header: http.Header{}}
			st := &routeState{}
			cpu := processCPUTime()
			for b.Loop() {
				w.n = 0
				if err := tq.write(w, r, q, tables, BasePath+"/vms", st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPUTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.SetBytes(w.n)
		})
	}
}
