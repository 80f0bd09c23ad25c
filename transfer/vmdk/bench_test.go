package vmdk

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// benchDisk writes the benchmark's raw disk: 1 GiB, sparse, with 256 MiB of
// data in every fourth 2 MiB block, alternately text-like (compressible
// about 3:1 like file system contents) and random (incompressible).
func benchDisk(b *testing.B, path string) int64 {
	b.Helper()
	const size = 1 << 30
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"kernel", "usr", "lib", "x86_64", "linux", "gnu", "share", "doc", "README", "ok", "error", "at", "0x", "var", "log", "systemd", "journal"}
	buf := make([]byte, DefaultBlockSize)
	for blk := int64(0); blk*DefaultBlockSize < size; blk += 4 {
		if (blk/4)%2 == 0 {
			p := buf[:0]
			for len(p) < len(buf) {
				p = fmt.Appendf(p, "%s/%s %d %s\n", words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(100000), words[rng.IntN(len(words))])
			}
			copy(buf, p)
		} else {
			for i := 0; i < len(buf); i += 8 {
				v := rng.Uint64()
				for k := range 8 {
					buf[i+k] = byte(v >> (8 * k))
				}
			}
		}
		if _, err := f.WriteAt(buf, blk*DefaultBlockSize); err != nil {
			b.Fatal(err)
		}
	}
	return size
}

// BenchmarkVsQemu generates a streamOptimized VMDK from the same 1 GiB
// sparse raw file (256 MiB of data) with Write (default level 1, and level 6
// like qemu's zlib default) and with `qemu-img convert -O vmdk -o
// subformat=streamOptimized`, each into a file in the same directory, and
// reports the throughput over the virtual size of each and the ratios.
// Run: go test -run '^$' -bench VsQemu -benchtime 3x ./transfer/vmdk
func BenchmarkVsQemu(b *testing.B) {
	qemu := qemuImg(b)
	dir := b.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	size := benchDisk(b, rawPath)
	ours := func(level int) time.Duration {
		in, err := os.Open(rawPath)
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(dir, fmt.Sprintf("ours%d.vmdk", level)))
		if err != nil {
			b.Fatal(err)
		}
		defer out.Close()
		start := time.Now()
		if _, err := Write(context.Background(), out, Options{Size: size, Level: level}, ReaderAtSource(in, size, 0)); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var t1, t6, tq time.Duration
	for b.Loop() {
		t1 += ours(1)
		t6 += ours(6)
		qPath := filepath.Join(dir, "qemu.vmdk")
		os.Remove(qPath)
		start := time.Now()
		if out, err := exec.Command(qemu, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", rawPath, qPath).CombinedOutput(); err != nil {
			b.Fatalf("qemu-img convert: %v\n%s", err, out)
		}
		tq += time.Since(start)
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(t1), "xorest-MB/s")
	b.ReportMetric(mbps(t6), "xorest-level6-MB/s")
	b.ReportMetric(mbps(tq), "qemu-img-MB/s")
	b.ReportMetric(tq.Seconds()/t1.Seconds(), "speedup-vs-qemu")
	b.ReportMetric(tq.Seconds()/t6.Seconds(), "level6-speedup-vs-qemu")
	for _, n := range []string{"ours1.vmdk", "ours6.vmdk", "qemu.vmdk"} {
		if st, err := os.Stat(filepath.Join(dir, n)); err == nil {
			b.ReportMetric(float64(st.Size())/(1<<20), n+"-MiB")
		}
	}
}

// BenchmarkWrite measures Write alone from the same disk to a discarding
// writer, with the workers of GOMAXPROCS.
func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	size := benchDisk(b, rawPath)
	in, err := os.Open(rawPath)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	b.SetBytes(size)
	for b.Loop() {
		if _, err := Write(context.Background(), discard{}, Options{Size: size}, ReaderAtSource(in, size, 0)); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
