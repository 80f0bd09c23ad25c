package xapi_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// TestTLS runs the simulator behind httptest's TLS server, whose
// certificate no system root trusts, like XAPI's self-signed one.
func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(xapisim.New(xapisim.Default()))
	t.Cleanup(srv.Close)
	cert := srv.Certificate()
	pin := xapi.Fingerprint(cert.Raw)
	colonPin := strings.ToUpper(pin[:2])
	for i := 2; i < len(pin); i += 2 {
		colonPin += ":" + strings.ToUpper(pin[i:i+2])
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	wrong := strings.Repeat("00", 32)

	tests := []struct {
		name string
		opts xapi.Options
		ok   bool
	}{
		{name: "system roots reject a self-signed certificate", opts: xapi.Options{}},
		{name: "pinned fingerprint", opts: xapi.Options{Fingerprints: []string{pin}}, ok: true},
		{name: "pinned fingerprint with colons, among others", opts: xapi.Options{Fingerprints: []string{wrong, colonPin}}, ok: true},
		{name: "wrong fingerprint", opts: xapi.Options{Fingerprints: []string{wrong}}},
		{name: "CA", opts: xapi.Options{CAPEM: caPEM}, ok: true},
		{name: "CA and matching pin", opts: xapi.Options{CAPEM: caPEM, Fingerprints: []string{pin}}, ok: true},
		{name: "CA and wrong pin", opts: xapi.Options{CAPEM: caPEM, Fingerprints: []string{wrong}}},
		{name: "explicit insecure", opts: xapi.Options{Insecure: true}, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.URL, opts.Username, opts.Password = srv.URL, "root", "password"
			c, err := xapi.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			_, err = c.Call(context.Background(), "pool.get_all")
			if tc.ok && err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if !tc.ok {
				var te *xapi.TransportError
				if !errors.Is(err, xapi.ErrUnreachable) || !errors.As(err, &te) {
					t.Fatalf("err = %v, want a TLS transport error", err)
				}
			}
		})
	}
}
