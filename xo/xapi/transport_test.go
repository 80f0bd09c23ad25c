package xapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// TestTransportFallback checks XO's rule for the auto transport
// (xapi.md §1.7): a 2xx answer of /jsonrpc that is not application/json
// switches the client to XML-RPC for good; any other failure of /jsonrpc
// is an error.
func TestTransportFallback(t *testing.T) {
	sim := xapisim.NewServer(t, xapisim.Default())
	simURL, _ := url.Parse(sim.URL)
	tests := []struct {
		name       string
		transport  string
		jsonrpc    http.HandlerFunc // nil: the simulator's /jsonrpc
		wantErr    error
		wantStatus int
		wantProto  string
		wantXML    bool // XML-RPC requests reached the host
	}{
		{name: "auto, JSON-RPC served", transport: xapi.TransportAuto, wantProto: xapi.TransportJSONRPC},
		{name: "auto, 200 text/html falls back", transport: xapi.TransportAuto, wantProto: xapi.TransportXMLRPC, wantXML: true,
			jsonrpc: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html>no JSON-RPC here</html>"))
			}},
		{name: "auto, 200 text/xml falls back", transport: xapi.TransportAuto, wantProto: xapi.TransportXMLRPC, wantXML: true,
			jsonrpc: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/xml")
				w.Write([]byte("<methodResponse/>"))
			}},
		{name: "auto, 404 is an error", transport: xapi.TransportAuto, wantErr: xapi.ErrUnreachable, wantStatus: 404, wantProto: xapi.TransportAuto,
			jsonrpc: http.NotFound},
		{name: "auto, 500 is an error", transport: xapi.TransportAuto, wantErr: xapi.ErrUnreachable, wantStatus: 500, wantProto: xapi.TransportAuto,
			jsonrpc: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }},
		{name: "auto, application/json with charset", transport: xapi.TransportAuto, wantProto: xapi.TransportJSONRPC,
			jsonrpc: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.Write([]byte(`{"jsonrpc":"2.0","result":"OpaqueRef:s","id":0}`))
			}},
		{name: "json-rpc forced, 200 text/html is an error", transport: xapi.TransportJSONRPC, wantErr: xapi.ErrInvalidResponse, wantProto: xapi.TransportJSONRPC,
			jsonrpc: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html></html>"))
			}},
		{name: "xml-rpc forced never asks /jsonrpc", transport: xapi.TransportXMLRPC, wantProto: xapi.TransportXMLRPC, wantXML: true,
			jsonrpc: func(w http.ResponseWriter, r *http.Request) { t.Error("xml-rpc client posted to /jsonrpc") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := httputil.NewSingleHostReverseProxy(simURL)
			var jsonHits, xmlHits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/jsonrpc" {
					jsonHits.Add(1)
					if tt.jsonrpc != nil {
						tt.jsonrpc(w, r)
						return
					}
				} else {
					xmlHits.Add(1)
				}
				proxy.ServeHTTP(w, r)
			}))
			defer srv.Close()
			c, err := xapi.New(xapi.Options{URL: srv.URL, Username: sim.User, Password: sim.Password, Transport: tt.transport})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			err = c.Login(ctx)
			if tt.wantErr == nil && err == nil && tt.name != "auto, application/json with charset" {
				_, err = c.Call(ctx, "pool.get_all")
				if err == nil {
					_, err = c.Call(ctx, "VM.get_all")
				}
			}
			var te *xapi.TransportError
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.wantStatus != 0 && (!errors.As(err, &te) || te.StatusCode != tt.wantStatus):
				t.Fatalf("err = %v, want HTTP status %d", err, tt.wantStatus)
			}
			if got := c.Transport(); got != tt.wantProto {
				t.Errorf("Transport() = %s, want %s", got, tt.wantProto)
			}
			if (xmlHits.Load() > 0) != tt.wantXML {
				t.Errorf("%d XML-RPC requests, want some: %v", xmlHits.Load(), tt.wantXML)
			}
			if tt.wantXML && tt.transport == xapi.TransportAuto && jsonHits.Load() != 1 {
				t.Errorf("/jsonrpc asked %d times; the fallback must be remembered", jsonHits.Load())
			}
		})
	}
}

// TestGenericValuesSameOverBothTransports checks the consistency rule of
// the generic form: records, single fields and event snapshots decode to
// the same Go values (strings for ints, time.Time, float64) over JSON-RPC
// and XML-RPC, so the xo package's transformations cannot tell them apart.
func TestGenericValuesSameOverBothTransports(t *testing.T) {
	ctx := context.Background()
	srv := xapisim.NewServer(t, xapisim.Default())
	clients := map[string]*xapi.Client{}
	for _, tr := range []string{xapi.TransportJSONRPC, xapi.TransportXMLRPC} {
		c, err := xapi.New(xapi.Options{URL: srv.URL, Username: srv.User, Password: srv.Password, Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		clients[tr] = c
	}
	j, x := clients[xapi.TransportJSONRPC], clients[xapi.TransportXMLRPC]

	sawTime, sawFloat := false, false
	for _, class := range []string{"pool", "host", "host_metrics", "host_cpu", "VM", "VM_metrics", "VM_guest_metrics",
		"SR", "VDI", "VBD", "VIF", "PIF", "PIF_metrics", "network", "PBD", "SM", "message", "task", "Bond", "PCI", "PGPU", "GPU_group"} {
		t.Run(class, func(t *testing.T) {
			gj, err := j.GetAllRecords(ctx, class)
			if err != nil {
				t.Fatal(err)
			}
			gx, err := x.GetAllRecords(ctx, class)
			if err != nil {
				t.Fatal(err)
			}
			if len(gj) != len(gx) {
				t.Fatalf("JSON %d records, XML %d", len(gj), len(gx))
			}
			for ref, rx := range gx {
				rj := gj[ref]
				for k, vx := range rx {
					if vj := rj[k]; !reflect.DeepEqual(vj, vx) {
						t.Fatalf("%s %s.%s: JSON %#v (%T), XML %#v (%T)", class, ref, k, vj, vj, vx, vx)
					}
					switch vx.(type) {
					case time.Time:
						sawTime = true
					case float64:
						sawFloat = true
					}
				}
				if len(rj) != len(rx) {
					t.Fatalf("%s %s: JSON %d fields, XML %d", class, ref, len(rj), len(rx))
				}
				one, err := j.GetRecord(ctx, class, ref)
				if err != nil || !reflect.DeepEqual(one, rx) {
					t.Fatalf("get_record over JSON: %v\n%#v\n%#v", err, one, rx)
				}
			}
		})
	}
	if !sawTime || !sawFloat {
		t.Errorf("the model exercised no datetime (%v) or float (%v) field", sawTime, sawFloat)
	}

	t.Run("get_<field>", func(t *testing.T) {
		vms, err := x.GetAllRecords(ctx, "VM")
		if err != nil {
			t.Fatal(err)
		}
		for ref := range vms {
			for _, m := range []string{"VM.get_snapshot_time", "VM.get_HVM_shadow_multiplier", "VM.get_VCPUs_max", "VM.get_tags", "VM.get_other_config"} {
				vj, err := j.Call(ctx, m, ref)
				if err != nil {
					t.Fatal(err)
				}
				vx, err := x.Call(ctx, m, ref)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(vj, vx) {
					t.Fatalf("%s: JSON %#v, XML %#v", m, vj, vx)
				}
			}
			break
		}
	})

	t.Run("host.get_servertime", func(t *testing.T) {
		hosts, err := x.GetAllRecords(ctx, "host")
		if err != nil {
			t.Fatal(err)
		}
		for ref := range hosts {
			vj, err := j.Call(ctx, "host.get_servertime", ref)
			if err != nil {
				if errors.Is(err, xapi.ErrMessageMethodUnknown) {
					return // not simulated
				}
				t.Fatal(err)
			}
			vx, err := x.Call(ctx, "host.get_servertime", ref)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := vj.(time.Time); !ok {
				t.Fatalf("JSON %#v (%T), XML %#v (%T)", vj, vj, vx, vx)
			}
		}
	})

	t.Run("event.from snapshots", func(t *testing.T) {
		bj, err := j.EventFrom(ctx, []string{"*"}, "", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		bx, err := x.EventFrom(ctx, []string{"*"}, "", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(bj.ValidRefCounts, bx.ValidRefCounts) || len(bj.ValidRefCounts) == 0 {
			t.Fatalf("valid_ref_counts: JSON %v, XML %v", bj.ValidRefCounts, bx.ValidRefCounts)
		}
		snaps := map[xapi.Ref]map[string]any{}
		for _, e := range bx.Events {
			snaps[e.Ref] = e.Snapshot
		}
		if len(bj.Events) != len(bx.Events) || len(bj.Events) == 0 {
			t.Fatalf("JSON %d events, XML %d", len(bj.Events), len(bx.Events))
		}
		for _, e := range bj.Events {
			if !reflect.DeepEqual(e.Snapshot, snaps[e.Ref]) {
				t.Fatalf("%s %s snapshot:\nJSON %#v\nXML  %#v", e.Class, e.Ref, e.Snapshot, snaps[e.Ref])
			}
		}
	})
}
