package xva

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGNUTarReadsXVA checks with GNU tar (an independent implementation)
// that our archives are valid tar streams, plain, gzip- and zstd-compressed.
func TestGNUTarReadsXVA(t *testing.T) {
	gnutar, err := exec.LookPath("tar")
	if err != nil {
		t.Fatal("GNU tar not found: install it with `apt-get install -y tar gzip zstd`")
	}
	disks := sampleDisks()
	plain := writeXVA(t, disks, WriterOptions{ModTime: time.Unix(1700000000, 0)})
	want := entries(t, plain)
	for _, tc := range []struct {
		comp Compression
		flag string
		tool string
	}{
		{None, "", ""},
		{Gzip, "--gzip", "gzip"},
		{Zstd, "--zstd", "zstd"},
	} {
		t.Run(tc.comp.String(), func(t *testing.T) {
			if tc.tool != "" {
				if _, err := exec.LookPath(tc.tool); err != nil {
					t.Fatalf("%s not found: install it with `apt-get install -y %s`", tc.tool, tc.tool)
				}
			}
			p := filepath.Join(t.TempDir(), "vm.xva")
			if err := os.WriteFile(p, writeXVA(t, disks, WriterOptions{Compression: tc.comp, ModTime: time.Unix(1700000000, 0)}), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"-tv", "-f", p}
			if tc.flag != "" {
				args = append(args, tc.flag)
			}
			out, err := exec.Command(gnutar, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("tar %v: %v\n%s", args, err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != len(want) {
				t.Fatalf("tar lists %d entries, want %d:\n%s", len(lines), len(want), out)
			}
			for i, line := range lines {
				f := strings.Fields(line)
				// -rw-r--r-- 0/0 1048576 2023-11-14 22:13 Ref:10/00000000
				name, size := f[len(f)-1], f[2]
				if got := name + ":" + size; got != want[i] {
					t.Errorf("entry %d: tar says %s, want %s", i, got, want[i])
				}
			}
		})
	}
}

// TestReadGNUTarXVA reads an XVA assembled by GNU tar (GNU header format,
// gzip-compressed by tar itself).
func TestReadGNUTarXVA(t *testing.T) {
	gnutar, err := exec.LookPath("tar")
	if err != nil {
		t.Fatal("GNU tar not found: install it with `apt-get install -y tar gzip`")
	}
	dir := t.TempDir()
	data := diskData(2*ChunkSize+1000, 3, 0, 2)
	files := map[string][]byte{
		"ova.xml":                 []byte(testOVA),
		"Ref:7/00000000":          data[:ChunkSize],
		"Ref:7/00000000.xxhash":   xxh(data[:ChunkSize]),
		"Ref:7/00000002":          data[2*ChunkSize:],
		"Ref:7/00000002.checksum": sha(data[2*ChunkSize:]),
	}
	if err := os.Mkdir(filepath.Join(dir, "Ref:7"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "gnu.xva")
	args := []string{"--format=gnu", "--force-local", "-czf", p, "-C", dir, "ova.xml", "Ref:7/00000000", "Ref:7/00000000.xxhash", "Ref:7/00000002", "Ref:7/00000002.checksum"}
	if out, err := exec.Command(gnutar, args...).CombinedOutput(); err != nil {
		t.Fatalf("tar %v: %v\n%s", args, err, out)
	}
	x, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, _, r := readAll(t, x, ReaderOptions{}, map[string]int64{"Ref:7": int64(len(data))})
	if r.Compression() != Gzip {
		t.Errorf("compression %s, want gzip", r.Compression())
	}
	if !bytes.Equal(got["Ref:7"], data) {
		t.Error("disk read from a GNU tar XVA differs")
	}
}
