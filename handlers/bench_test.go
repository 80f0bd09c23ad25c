package handlers

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/xorest/xorest/xo/xapisim"
)

// BenchmarkCollection measures warm collection reads over the 10,000 VMs
// of xapisim.Large, through the whole handler (authentication, the
// catch-up with XAPI that every read does, filtering, picking, encoding),
// without the network.
func BenchmarkCollection(b *testing.B) {
	sf := newSimFixture(b, []xapisim.Model{xapisim.Large()})
	tests := []struct{ name, target string }{
		{"fields+filter", "/vms?fields=name_label,power_state&filter=" + url.QueryEscape("power_state:Running name_label:/^vm[0-4]/")},
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
			for b.Loop() {
				rec := sf.get(b, target)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d", rec.Code)
				}
				bytes = rec.Body.Len()
			}
			b.SetBytes(int64(bytes))
		})
	}
}
