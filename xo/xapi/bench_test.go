package xapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/kolo/xmlrpc"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

var (
	vm10kOnce sync.Once
	vm10kBody []byte
	vm10kErr  error
)

// vm10k returns the bytes of VM.get_all_records as the simulator's
// 10,000-VM preset (xapisim.Large) sends them, recorded once per run.
func vm10k(b *testing.B) []byte {
	b.Helper()
	vm10kOnce.Do(func() {
		srv := xapisim.NewServer(b, xapisim.Large())
		body, err := xapi.EncodeCall("VM.get_all_records", srv.Session())
		if err != nil {
			vm10kErr = err
			return
		}
		resp, err := http.Post(srv.URL, "text/xml", bytes.NewReader(body))
		if err != nil {
			vm10kErr = err
			return
		}
		defer resp.Body.Close()
		vm10kBody, vm10kErr = io.ReadAll(resp.Body)
	})
	if vm10kErr != nil {
		b.Fatal(vm10kErr)
	}
	return vm10kBody
}

// replayServer answers every POST with body, like XAPI would: text/xml
// and a Content-Length.
func replayServer(b *testing.B, body []byte) *xapi.Client {
	b.Helper()
	login := []byte(`<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>OpaqueRef:bench</value></member></struct></value></param></params></methodResponse>`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/xml")
		if bytes.Contains(req, []byte("session.login_with_password")) {
			w.Write(login)
			return
		}
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	c, err := xapi.New(xapi.Options{URL: srv.URL, Username: "root"})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Login(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkGetAllRecordsVM10k measures Client.GetAllRecords("VM") over
// loopback HTTP for the 10,000 VMs of xapisim.Large, replayed by an
// httptest server so that only the client's work is measured (the
// simulator's encoding is not).
func BenchmarkGetAllRecordsVM10k(b *testing.B) {
	body := vm10k(b)
	c := replayServer(b, body)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		call func() (int, error)
	}{
		{"generic", func() (int, error) { m, err := c.GetAllRecords(ctx, "VM"); return len(m), err }},
		{"typed", func() (int, error) { m, err := c.VMs(ctx); return len(m), err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				n, err := bc.call()
				if err != nil || n < 10000 {
					b.Fatalf("%d records, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkDecodeVM10k compares the decoders on the same bytes, without
// HTTP: ours into `any`, ours into typed records, and kolo/xmlrpc's
// reflection decoder into `any` (the reference).
func BenchmarkDecodeVM10k(b *testing.B) {
	body := vm10k(b)
	b.Run("xapi-any", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var m map[xapi.Ref]map[string]any
			if _, err := xapi.DecodeResponse(bytes.NewReader(body), &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("xapi-typed", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var m map[xapi.Ref]*xapi.VM
			if _, err := xapi.DecodeResponse(bytes.NewReader(body), &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	// kolo cannot decode XAPI's untyped values into an interface, nor
	// empty ones at all (see KoloView): give it <string> values instead.
	b.Run("kolo-any", func(b *testing.B) {
		koloBody := xapi.KoloView(body)
		b.SetBytes(int64(len(koloBody)))
		b.ReportAllocs()
		for b.Loop() {
			var v any
			if err := xmlrpc.Response(koloBody).Unmarshal(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
