package vmdk

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// spreadSource yields a 2 MiB block of compressible data every step blocks.
type spreadSource struct {
	next, step, n int64
	buf           []byte
}

func (s *spreadSource) Next() (int64, []byte, error) {
	if s.next >= s.n {
		return 0, nil, io.EOF
	}
	idx := s.next
	s.next += s.step
	s.buf[0] = byte(idx) // every block differs
	return idx, s.buf, nil
}

// TestBoundedMemory writes 256 MiB of data spread over a 64 GiB disk (2,048
// grain tables) and checks that the writer allocates a bounded amount, far
// below the data size: jobs, compressors and the grain directory only.
func TestBoundedMemory(t *testing.T) {
	const size = 64 << 30
	buf := bytes.Repeat([]byte("0123456789abcdef fedcba9876543210\n"), DefaultBlockSize/34+1)[:DefaultBlockSize]
	src := &spreadSource{step: 256, n: size / DefaultBlockSize, buf: buf}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := Write(context.Background(), io.Discard, Options{Size: size, Workers: 2}, src)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("image %d bytes, %d bytes allocated", n, alloc)
	if alloc > 48<<20 {
		t.Errorf("Write allocated %d MiB for 256 MiB of data, want a bounded amount under 48 MiB", alloc>>20)
	}
}

// TestSparseFileSource reads a sparse file through ReaderAtSource (holes
// skipped with SEEK_DATA on Linux) and ReaderSource.
func TestSparseFileSource(t *testing.T) {
	const size = 96 << 20
	raw := makeRaw(size, 15, region{5 << 20, 100, true}, region{40<<20 + 3, GrainSize, false}, region{size - 512, 512, true})
	path := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{5 << 20, 40 << 20, size - GrainSize} {
		if _, err := f.WriteAt(raw[off:min(off+2*GrainSize, size)], off); err != nil {
			t.Fatal(err)
		}
	}
	for name, src := range map[string]func() BlockSource{
		"ReaderAtSource": func() BlockSource { return ReaderAtSource(f, size, 0) },
		"ReaderSource":   func() BlockSource { return ReaderSource(io.NewSectionReader(f, 0, size), size, GrainSize) },
	} {
		t.Run(name, func(t *testing.T) {
			var img bytes.Buffer
			bs := int64(0)
			if name == "ReaderSource" {
				bs = GrainSize
			}
			if _, err := Write(context.Background(), &img, Options{Size: size, BlockSize: bs}, src()); err != nil {
				t.Fatal(err)
			}
			if _, got := readRaw(t, img.Bytes()); !bytes.Equal(got, raw) {
				t.Fatal("data differs")
			}
		})
	}
}
