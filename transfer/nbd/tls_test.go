package nbd_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xorest/xorest/transfer/nbd"
)

// certPair is a certificate and its key.
type certPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// newCert makes a certificate for names (DNS names or IP addresses),
// signed by parent, or self-signed when parent is nil.
func newCert(tb testing.TB, cn string, isCA bool, parent *certPair, names ...string) *certPair {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &certPair{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// tlsDir writes the files `nbdkit --tls-certificates=DIR` reads.
func tlsDir(tb testing.TB, ca, server *certPair) string {
	tb.Helper()
	dir := tb.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(server.key)
	if err != nil {
		tb.Fatal(err)
	}
	files := map[string][]byte{
		"ca-cert.pem":     ca.pem,
		"server-cert.pem": server.pem,
		"server-key.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func pinned(tb testing.TB, certPEM []byte, name string) *tls.Config {
	tb.Helper()
	cfg, err := nbd.PinnedTLSConfig(certPEM, name)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// TestTLS runs STARTTLS against nbdkit --tls=require with a CA-signed
// certificate and with a self-signed one like an XCP-ng host's, and checks
// that wrong certificates, names and modes fail.
func TestTLS(t *testing.T) {
	path, data := randomFile(t, 3<<20, 8)
	ca := newCert(t, "test CA", true, nil)
	signed := newCert(t, "localhost", false, ca, "localhost", "127.0.0.1")
	// XAPI's host certificate: self-signed, named after the host, which
	// get_nbd_info returns as subject; clients connect by IP address.
	self := newCert(t, "xcp-host.example", false, nil, "xcp-host.example")
	other := newCert(t, "xcp-host.example", false, nil, "xcp-host.example")

	caPool := x509.NewCertPool()
	caPool.AddCert(ca.cert)
	signedDir, selfDir := tlsDir(t, ca, signed), tlsDir(t, self, self)
	tlsArgs := func(dir string, extra ...string) []string {
		return append(extra, "--tls=require", "--tls-certificates="+dir, "file", path)
	}

	cases := []struct {
		name     string
		args     []string
		tls      *tls.Config
		nameOnly bool
		wantErr  error // nil: success; errAny: any error
	}{
		{"CA roots", tlsArgs(signedDir), &tls.Config{RootCAs: caPool, ServerName: "localhost"}, false, nil},
		{"CA roots, server name from the address", tlsArgs(signedDir), &tls.Config{RootCAs: caPool}, false, nil},
		{"pinned CA", tlsArgs(signedDir), pinned(t, ca.pem, "localhost"), false, nil},
		{"pinned self-signed", tlsArgs(selfDir), pinned(t, self.pem, "xcp-host.example"), false, nil},
		{"pinned self-signed, xapi-like handshake", tlsArgs(selfDir, "--mask-handshake=1", "--no-sr"), pinned(t, self.pem, "xcp-host.example"), true, nil},
		{"pinned other certificate", tlsArgs(selfDir), pinned(t, other.pem, "xcp-host.example"), false, errAny},
		{"pinned CA, wrong name", tlsArgs(signedDir), pinned(t, ca.pem, "elsewhere"), false, errAny},
		{"unknown CA", tlsArgs(selfDir), &tls.Config{RootCAs: caPool, ServerName: "xcp-host.example"}, false, errAny},
		{"plain client, TLS required", tlsArgs(signedDir), nil, false, nbd.ErrTLSRequired},
		{"plain client, TLS required, export name only", tlsArgs(signedDir), nil, true, errAny},
		{"TLS client, plain server", []string{"file", path}, pinned(t, self.pem, "xcp-host.example"), false, nbd.ErrTLSRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startNbdkit(t, true, tc.args...)
			opts := s.options()
			opts.TLS, opts.ExportNameOnly = tc.tls, tc.nameOnly
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := nbd.Dial(ctx, opts)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Dial: %v", err)
			case tc.wantErr == errAny && err == nil, tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				if c != nil {
					c.Close()
				}
				t.Fatalf("Dial err = %v, want %v", err, tc.wantErr)
			case err != nil:
				t.Logf("Dial error (expected): %v", err)
				return
			}
			defer c.Close()
			if !c.TLS() {
				t.Error("TLS() = false")
			}
			p := make([]byte, len(data)-100)
			if _, err := c.ReadAt(p, 100); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, data[100:]) {
				t.Fatal("data read over TLS differs from the file")
			}
		})
	}
}

// errAny stands for "some error" in test tables.
var errAny = errors.New("any error")

// TestPinnedTLSConfigInput rejects PEM data without a certificate.
func TestPinnedTLSConfigInput(t *testing.T) {
	for _, in := range []string{"", "not pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := nbd.PinnedTLSConfig([]byte(in), "x"); err == nil {
			t.Errorf("PinnedTLSConfig(%q) succeeded", in)
		}
	}
}
