package nbd_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/xorest/xorest/transfer/nbd"
)

// BenchmarkReader reads a 1 GiB file-backed nbdkit export through the
// multi-connection Reader (N = 1, 2, 4) and with `nbdcopy URI null:` from
// the same server, plain and over TLS, and reports MB/s and the ratio to
// nbdcopy (x_nbdcopy > 1 means faster than nbdcopy). Run with
//
//	go test -run XXX -bench Reader -benchtime 3x ./transfer/nbd
func BenchmarkReader(b *testing.B) {
	nbdcopy := requireTool(b, "nbdcopy")
	const size = 1 << 30
	path := filepath.Join(b.TempDir(), "disk.raw")
	writeRandom(b, path, size)
	// nbdcopy verifies the server against ca-cert.pem and the address.
	ca := newCert(b, "test CA", true, nil)
	certDir := tlsDir(b, ca, newCert(b, "localhost", false, ca, "localhost", "127.0.0.1"))
	plain := startNbdkit(b, true, "file", path)
	secure := startNbdkit(b, true, "--tls=require", "--tls-certificates="+certDir, "file", path)
	tlsOpts := secure.options()
	tlsOpts.TLS = pinned(b, ca.pem, "localhost")

	for _, srv := range []struct {
		name string
		uri  string
		opts nbd.Options
	}{
		{"plain", "nbd://" + plain.addr, plain.options()},
		{"tls", "nbds://" + secure.addr + "/?tls-certificates=" + certDir, tlsOpts},
	} {
		var ref float64
		mbps := func(b *testing.B) float64 { return float64(size) * float64(b.N) / b.Elapsed().Seconds() / 1e6 }
		b.Run(srv.name+"/nbdcopy", func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if out, err := exec.Command(nbdcopy, srv.uri, "null:").CombinedOutput(); err != nil {
					b.Fatalf("nbdcopy: %v: %s", err, out)
				}
			}
			ref = mbps(b)
			b.ReportMetric(ref, "MB/s")
		})
		for _, n := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/reader-N=%d", srv.name, n), func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					r, err := nbd.NewReader(context.Background(), nbd.ReaderOptions{Endpoints: []nbd.Options{srv.opts}, Connections: n})
					if err != nil {
						b.Fatal(err)
					}
					got, err := io.Copy(io.Discard, r.Raw())
					r.Close()
					if err != nil || got != size {
						b.Fatalf("read %d bytes: %v", got, err)
					}
				}
				m := mbps(b)
				b.ReportMetric(m, "MB/s")
				if ref > 0 {
					b.ReportMetric(m/ref, "x_nbdcopy")
				}
			})
		}
	}
}

// writeRandom writes size pseudo-random bytes to path, 4 MiB at a time.
func writeRandom(tb testing.TB, path string, size int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	rnd := rand.NewChaCha8([32]byte{42})
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		rnd.Read(buf)
		if _, err := f.Write(buf[:min(int64(len(buf)), size-off)]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}
