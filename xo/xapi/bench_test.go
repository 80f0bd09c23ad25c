package xapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/kolo/xmlrpc"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

var (
	vm10kOnce sync.Once
	vm10kBody []byte // XML-RPC
	vm10kJSON []byte // JSON-RPC
	vm10kErr  error
)

// vm10k returns the bytes of VM.get_all_records as the simulator's
// 10,000-VM preset (xapisim.Large) sends them over XML-RPC, recorded once
// per run; vm10kJSONBody the same over JSON-RPC.
func vm10k(b *testing.B) []byte {
	b.Helper()
	vm10kOnce.Do(func() {
		srv := xapisim.NewServer(b, xapisim.Large())
		record := func(path, contentType string, body []byte, err error) []byte {
			if err != nil {
				vm10kErr = err
				return nil
			}
			u, err := url.Parse(srv.URL)
			if err != nil {
				vm10kErr = err
				return nil
			}
			u.Path = path
			resp, err := http.Post(u.String(), contentType, bytes.NewReader(body))
			if err != nil {
				vm10kErr = err
				return nil
			}
			defer resp.Body.Close()
			out, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s: HTTP %s: %.200s", path, resp.Status, out)
			}
			if err != nil {
				vm10kErr = err
			}
			return out
		}
		body, err := xapi.EncodeCall("VM.get_all_records", srv.Session())
		vm10kBody = record("/", "text/xml", body, err)
		body, err = xapi.EncodeJSONCall("VM.get_all_records", srv.Session())
		vm10kJSON = record("/jsonrpc", "application/json", body, err)
	})
	if vm10kErr != nil {
		b.Fatal(vm10kErr)
	}
	return vm10kBody
}

func vm10kJSONBody(b *testing.B) []byte {
	vm10k(b)
	return vm10kJSON
}

// replayServer answers every POST with a recorded body, like XAPI would:
// XML-RPC (text/xml) on every path but /jsonrpc, which gets jsonBody
// (application/json); both with a Content-Length. The client uses
// transport.
func replayServer(b *testing.B, xmlBody, jsonBody []byte, transport string) *xapi.Client {
	b.Helper()
	login := []byte(`<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>OpaqueRef:bench</value></member></struct></value></param></params></methodResponse>`)
	jsonLogin := []byte(`{"jsonrpc":"2.0","result":"OpaqueRef:bench","id":0}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := io.ReadAll(r.Body)
		isLogin := bytes.Contains(req, []byte("session.login_with_password"))
		if r.URL.Path == "/jsonrpc" {
			w.Header().Set("Content-Type", "application/json")
			if isLogin {
				w.Write(jsonLogin)
			} else {
				w.Write(jsonBody)
			}
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		if isLogin {
			w.Write(login)
			return
		}
		w.Write(xmlBody)
	}))
	b.Cleanup(srv.Close)
	c, err := xapi.New(xapi.Options{URL: srv.URL, Username: "root", Transport: transport})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Login(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkGetAllRecordsVM10k measures Client.GetAllRecords("VM") and
// Client.VMs over loopback HTTP for the 10,000 VMs of xapisim.Large, per
// transport, replayed by an httptest server so that only the client's
// work is measured (the simulator's encoding is not). MB/s are of each
// transport's own body (JSON is about 2.6 times smaller).
func BenchmarkGetAllRecordsVM10k(b *testing.B) {
	xmlBody, jsonBody := vm10k(b), vm10kJSONBody(b)
	ctx := context.Background()
	for _, tr := range []struct {
		name string
		body []byte
	}{{xapi.TransportXMLRPC, xmlBody}, {xapi.TransportJSONRPC, jsonBody}} {
		c := replayServer(b, xmlBody, jsonBody, tr.name)
		for _, bc := range []struct {
			name string
			call func() (int, error)
		}{
			{"generic", func() (int, error) { m, err := c.GetAllRecords(ctx, "VM"); return len(m), err }},
			{"typed", func() (int, error) { m, err := c.VMs(ctx); return len(m), err }},
		} {
			b.Run(tr.name+"/"+bc.name, func(b *testing.B) {
				b.SetBytes(int64(len(tr.body)))
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
	jsonBody := vm10kJSONBody(b)
	b.Run("json-any", func(b *testing.B) {
		b.SetBytes(int64(len(jsonBody)))
		b.ReportAllocs()
		for b.Loop() {
			var m map[xapi.Ref]map[string]any
			if _, err := xapi.DecodeJSONResponse(bytes.NewReader(jsonBody), &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json-typed", func(b *testing.B) {
		b.SetBytes(int64(len(jsonBody)))
		b.ReportAllocs()
		for b.Loop() {
			var m map[xapi.Ref]*xapi.VM
			if _, err := xapi.DecodeJSONResponse(bytes.NewReader(jsonBody), &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	// the generic records as the Client gets them: converted with the
	// schema after decoding (what jsonRoundTrip does), or while decoding
	for _, inline := range []bool{false, true} {
		name := "json-records"
		if inline {
			name += "-inline"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(jsonBody)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := xapi.DecodeJSONRecords(bytes.NewReader(jsonBody), "VM.get_all_records", inline); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// encoding/json into `any`, the reference for the JSON decoder
	b.Run("encoding-json-any", func(b *testing.B) {
		b.SetBytes(int64(len(jsonBody)))
		b.ReportAllocs()
		for b.Loop() {
			var v any
			if err := json.NewDecoder(bytes.NewReader(jsonBody)).Decode(&v); err != nil {
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

// BenchmarkDecodeJSONSmall measures the fixed cost of decoding the small
// answers of most calls (a ref, a short record).
func BenchmarkDecodeJSONSmall(b *testing.B) {
	for _, bc := range []struct{ name, body string }{
		{"ref", `{"jsonrpc":"2.0","result":"OpaqueRef:1d6c9d33-8a2b-4e7c-9d7e-1a2b3c4d5e6f","id":0}`},
		{"record", `{"jsonrpc":"2.0","result":{"uuid":"u1","name_label":"vm 1","VCPUs_max":4,"memory_static_max":17179869184,` +
			`"is_a_template":false,"tags":["x","y"],"other_config":{"k":"v"},"snapshot_time":"20250319T04:16:24Z",` +
			`"HVM_shadow_multiplier":1.5,"affinity":"OpaqueRef:NULL"},"id":0}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := xapi.DecodeJSONResponse(strings.NewReader(bc.body), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
