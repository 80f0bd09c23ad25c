package nbd_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/xorest/xorest/transfer/nbd"
	"github.com/xorest/xorest/transfer/vhd"
)

// BenchmarkReader reads a 1 GiB file-backed nbdkit export through the
// multi-connection Reader (N = 1, 2, 4, and N = 2 building a VHD with
// transfer/vhd, as the preferNbd export does), plain and over TLS. Between two
// reads it runs `nbdcopy URI null:` against the same server, with its
// default connections and with -C N, so that both see the same machine
// load, and reports MB/s for all three and the ratios (x_nbdcopy > 1 means
// the Reader is faster). Run with
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
		for _, run := range []struct {
			n      int
			format string
		}{{1, "raw"}, {2, "raw"}, {4, "raw"}, {2, "vhd"}} {
			n := run.n
			b.Run(fmt.Sprintf("%s/N=%d/%s", srv.name, n, run.format), func(b *testing.B) {
				var copyDefault, copyN, copyCPU, readerCPU time.Duration
				nbdcopyRun := func(args ...string) time.Duration {
					start := time.Now()
					cmd := exec.Command(nbdcopy, append(args, srv.uri, "null:")...)
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("nbdcopy: %v: %s", err, out)
					}
					copyCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
					return time.Since(start)
				}
				b.SetBytes(size)
				for b.Loop() {
					b.StopTimer()
					copyDefault += nbdcopyRun()
					copyN += nbdcopyRun(fmt.Sprintf("--connections=%d", n))
					b.StartTimer()
					cpu0 := cpuTime(b)
					r, err := nbd.NewReader(context.Background(), nbd.ReaderOptions{Endpoints: []nbd.Options{srv.opts}, Connections: n})
					if err != nil {
						b.Fatal(err)
					}
					var got int64
					if run.format == "vhd" {
						// The VHD xorest builds from NBD reads (issue 5's
						// preferNbd path), against nbdcopy's raw copy.
						var st *vhd.Stream
						if st, err = vhd.NewStream(vhd.Options{Size: r.Size()}, vhd.AllBlocks(r.Size()), r); err == nil {
							if got, err = io.Copy(io.Discard, st); err == nil && got != st.Size() {
								err = fmt.Errorf("VHD of %d bytes, announced %d", got, st.Size())
							}
							got = size
						}
					} else {
						got, err = io.Copy(io.Discard, r.Raw())
					}
					r.Close()
					if err != nil || got != size {
						b.Fatalf("read %d bytes: %v", got, err)
					}
					readerCPU += cpuTime(b) - cpu0
				}
				mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
				reader := mbps(b.Elapsed())
				b.ReportMetric(reader, "MB/s")
				b.ReportMetric(mbps(copyDefault), "nbdcopy_MB/s")
				b.ReportMetric(mbps(copyN), "nbdcopy-C_N_MB/s")
				b.ReportMetric(reader/mbps(copyDefault), "x_nbdcopy")
				b.ReportMetric(reader/mbps(copyN), "x_nbdcopy-C_N")
				// Client CPU per GiB (server excluded), less sensitive to the
				// machine's load than MB/s; nbdcopy's covers both of its runs.
				b.ReportMetric(readerCPU.Seconds()*1000/float64(b.N), "cpu_ms/GiB")
				b.ReportMetric(copyCPU.Seconds()*1000/float64(2*b.N), "nbdcopy_cpu_ms/GiB")
			})
		}
	}
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
