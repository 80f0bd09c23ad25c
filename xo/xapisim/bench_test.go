package xapisim

import (
	"testing"
)

// benchRecords builds the Large model once and returns VM.get_all_records'
// result for its 10,000 guest VMs (plus templates, snapshots and dom0s).
func benchRecords(b *testing.B) (*Simulator, any) {
	b.Helper()
	sim := New(Large())
	s := sim.Login("root", "")
	res, err := sim.Call(b.Context(), "VM.get_all_records", s)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(res.(map[string]any)); n < 10000 {
		b.Fatalf("%d VMs", n)
	}
	return sim, res
}

// BenchmarkEncodeGetAllRecords measures encoding VM.get_all_records of
// 10,000 VMs as an XML-RPC and a JSON-RPC response.
func BenchmarkEncodeGetAllRecords(b *testing.B) {
	_, res := benchRecords(b)
	b.Run("xmlrpc", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			var err error
			buf, err = appendXMLResponse(buf[:0], res, nil, false)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("jsonrpc", func(b *testing.B) {
		req := &request{json: true, v2: true, id: []byte("0")}
		var buf []byte
		for b.Loop() {
			var err error
			buf, err = appendJSONResponse(buf[:0], req, res, nil)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
}

// BenchmarkGetAllRecords measures the whole call (copying the records out
// of the registry, then encoding) for 10,000 VMs.
func BenchmarkGetAllRecords(b *testing.B) {
	sim, _ := benchRecords(b)
	s := sim.Login("root", "")
	var buf []byte
	for b.Loop() {
		res, f, _ := sim.dispatch(b.Context(), "VM.get_all_records", []any{s})
		if f != nil {
			b.Fatal(f)
		}
		var err error
		buf, err = appendXMLResponse(buf[:0], res, nil, false)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkCopyAllRecords measures copying 10,000 VM records out of the
// registry (what Simulator.Call does for Go callers; RPCs encode the live
// records instead).
func BenchmarkCopyAllRecords(b *testing.B) {
	sim, _ := benchRecords(b)
	s := sim.Login("root", "")
	for b.Loop() {
		if _, err := sim.Call(b.Context(), "VM.get_all_records", s); err != nil {
			b.Fatal(err)
		}
	}
}
