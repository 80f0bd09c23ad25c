package vmdk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// region is a filled range of a test disk.
type region struct {
	off, n int64
	random bool // random bytes, else a compressible pattern
}

type sizeCase struct {
	name   string
	size   int64
	filled []region
}

var sizeCases = []sizeCase{
	{"empty", 0, nil},
	{"one sector", 512, []region{{0, 512, true}}},
	{"not a grain multiple", 5*GrainSize + 3*512, []region{{0, 5*GrainSize + 3*512, false}}},
	{"odd size", 3*GrainSize + 1000, []region{{GrainSize, 2*GrainSize + 1000, true}}},
	{"all zero", 8 << 20, nil},
	{"dense random", 3<<20 + GrainSize, []region{{0, 3<<20 + GrainSize, true}}},
	{"sparse over several grain tables", 100 << 20, []region{
		{0, 4096, false}, {GrainSize + 17, 100, true}, {33 << 20, 1 << 20, true}, {64<<20 - 512, 1024, false}, {100<<20 - 512, 512, true},
	}},
}

func makeRaw(size int64, seed uint64, filled ...region) []byte {
	raw := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, r := range filled {
		seg := raw[r.off : r.off+r.n]
		for i := range seg {
			if r.random {
				seg[i] = byte(rng.Uint32())
			} else {
				seg[i] = byte((r.off+int64(i))/512) | 1
			}
		}
	}
	return raw
}

func buildVMDK(t testing.TB, raw []byte, opts Options) []byte {
	t.Helper()
	if opts.Size == 0 {
		opts.Size = int64(len(raw))
	}
	var out bytes.Buffer
	n, err := Write(context.Background(), &out, opts, ReaderAtSource(bytes.NewReader(raw), int64(len(raw)), opts.BlockSize))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(out.Len()) {
		t.Fatalf("Write returned %d, wrote %d bytes", n, out.Len())
	}
	return out.Bytes()
}

func readRaw(t testing.TB, img []byte) (*Reader, []byte) {
	t.Helper()
	v, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(v.Raw())
	if err != nil {
		t.Fatal(err)
	}
	return v, raw
}

func sectorSize(n int64) int64 { return (n + SectorSize - 1) / SectorSize * SectorSize }

func TestRoundTrip(t *testing.T) {
	for _, tc := range sizeCases {
		for _, bs := range []int64{GrainSize, DefaultBlockSize} {
			t.Run(tc.name+"/"+map[int64]string{GrainSize: "64KiB", DefaultBlockSize: "2MiB"}[bs], func(t *testing.T) {
				raw := makeRaw(tc.size, 1, tc.filled...)
				img := buildVMDK(t, raw, Options{BlockSize: bs, Workers: 3})
				v, got := readRaw(t, img)
				if v.CreateType() != "streamOptimized" {
					t.Errorf("createType %q", v.CreateType())
				}
				if v.Size() != sectorSize(tc.size) {
					t.Errorf("size %d, want %d", v.Size(), sectorSize(tc.size))
				}
				want := append(raw, make([]byte, sectorSize(tc.size)-tc.size)...)
				if !bytes.Equal(got, want) {
					t.Fatal("data differs after the round trip")
				}
				if max := MaxSize(tc.size, tc.size); int64(len(img)) > max {
					t.Errorf("image of %d bytes exceeds MaxSize %d", len(img), max)
				}
				checkStream(t, img)
			})
		}
	}
}

// checkStream walks the image as a stream reader would: header, descriptor,
// then grains and metadata markers in sequence up to the end-of-stream marker
// in the last sector, with each grain table right after its marker.
func checkStream(t *testing.T, img []byte) {
	t.Helper()
	h, err := ParseHeader(img, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.GDOffset != gdAtEnd || h.Flags != streamFlags || h.Version != 3 || h.CompressAlgorithm != 1 || h.GrainSize != 128 {
		t.Fatalf("stream header %+v", h)
	}
	var lastLBA int64 = -1
	seen := map[int]int{}
	for off := int64(h.OverHead) * SectorSize; ; {
		if off+SectorSize > int64(len(img)) {
			t.Fatalf("no end-of-stream marker before the end (offset %d)", off)
		}
		val, size, typ := parseMarker(img[off:])
		if size > 0 {
			if int64(val) <= lastLBA {
				t.Fatalf("grain LBA %d after %d", val, lastLBA)
			}
			lastLBA = int64(val)
			off += sectorSize(12 + int64(size))
			continue
		}
		seen[int(typ)]++
		if typ == MarkerEOS {
			if off+SectorSize != int64(len(img)) {
				t.Fatalf("end-of-stream marker at %d, image ends at %d", off, len(img))
			}
			break
		}
		off += SectorSize + int64(val)*SectorSize
	}
	if seen[MarkerGD] != 1 || seen[MarkerFooter] != 1 {
		t.Errorf("markers %v: want one GD and one footer marker", seen)
	}
}

func TestPadTo(t *testing.T) {
	for _, tc := range sizeCases {
		t.Run(tc.name, func(t *testing.T) {
			raw := makeRaw(tc.size, 2, tc.filled...)
			pad := MaxSize(tc.size, tc.size)
			img := buildVMDK(t, raw, Options{PadTo: pad})
			if int64(len(img)) != pad {
				t.Fatalf("padded image of %d bytes, want %d", len(img), pad)
			}
			_, got := readRaw(t, img)
			if !bytes.Equal(got[:tc.size], raw) {
				t.Fatal("data differs after the round trip")
			}
			checkStream(t, img)
		})
	}
	raw := makeRaw(1<<20, 3, region{0, 1 << 20, true})
	_, err := Write(context.Background(), io.Discard, Options{Size: 1 << 20, PadTo: MaxSize(1<<20, 512<<10)}, ReaderSource(bytes.NewReader(raw), 1<<20, 0))
	if !errors.Is(err, ErrSizeExceeded) {
		t.Errorf("image larger than PadTo: err %v, want ErrSizeExceeded", err)
	}
}

// TestDeterministic checks that two writes of the same data with the same
// CID are identical whatever the number of workers (needed for a counting
// pass followed by the real one).
func TestDeterministic(t *testing.T) {
	tc := sizeCases[len(sizeCases)-1]
	raw := makeRaw(tc.size, 4, tc.filled...)
	a := buildVMDK(t, raw, Options{CID: 42, Workers: 1})
	b := buildVMDK(t, raw, Options{CID: 42, Workers: 4, BlockSize: GrainSize})
	if !bytes.Equal(a, b) {
		t.Fatal("two writes with the same CID differ")
	}
}

func TestIncompressibleGrainFallsBackToStored(t *testing.T) {
	in := makeRaw(GrainSize, 5, region{0, GrainSize, true})
	out := appendStored(nil, in)
	if len(out) != maxStoredZlib {
		t.Fatalf("stored zlib stream of %d bytes, want %d", len(out), maxStoredZlib)
	}
	if 12+len(out) > MaxGrainBytes {
		t.Fatalf("stored grain exceeds MaxGrainBytes")
	}
	v := &Reader{gbytes: GrainSize, header: Header{GrainSize: 128, Flags: FlagCompressed}}
	img := append(make([]byte, 12), out...)
	img[8], img[9], img[10] = byte(len(out)), byte(len(out)>>8), byte(len(out)>>16)
	v.r, v.fileSize = bytes.NewReader(img), int64(len(img))
	got, err := v.readGrain(0, 0)
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("stored grain reads back wrong: %v", err)
	}
}

func TestWriteErrors(t *testing.T) {
	type src []struct {
		idx  int64
		data []byte
	}
	cases := []struct {
		name string
		opts Options
		src  src
	}{
		{"negative size", Options{Size: -1}, nil},
		{"too large", Options{Size: MaxCapacity + 1}, nil},
		{"bad block size", Options{Size: 1 << 20, BlockSize: 4096}, nil},
		{"bad level", Options{Size: 1 << 20, Level: 12}, nil},
		{"unaligned PadTo", Options{Size: 1 << 20, PadTo: 1000}, nil},
		{"out of order", Options{Size: 4 << 20}, src{{1, []byte{1}}, {0, []byte{1}}}},
		{"beyond size", Options{Size: 4 << 20}, src{{2, []byte{1}}}},
		{"block too long", Options{Size: 4 << 20, BlockSize: GrainSize}, src{{0, make([]byte, GrainSize+1)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			i := 0
			s := sourceFunc(func() (int64, []byte, error) {
				if i >= len(tc.src) {
					return 0, nil, io.EOF
				}
				i++
				return tc.src[i-1].idx, tc.src[i-1].data, nil
			})
			if _, err := Write(context.Background(), io.Discard, tc.opts, s); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

type sourceFunc func() (int64, []byte, error)

func (f sourceFunc) Next() (int64, []byte, error) { return f() }

func TestSourceErrorAndCancel(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	s := sourceFunc(func() (int64, []byte, error) {
		n++
		if n > 40 {
			return 0, nil, boom
		}
		return int64(n - 1), bytes.Repeat([]byte{1}, GrainSize), nil
	})
	if _, err := Write(context.Background(), io.Discard, Options{Size: 1 << 30, BlockSize: GrainSize}, s); !errors.Is(err, boom) {
		t.Errorf("source error: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	raw := makeRaw(4<<20, 1, region{0, 4 << 20, false})
	if _, err := Write(ctx, io.Discard, Options{Size: 4 << 20}, ReaderSource(bytes.NewReader(raw), 4<<20, 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
	w := &failWriter{after: 200 << 10}
	dense := makeRaw(4<<20, 1, region{0, 4 << 20, true})
	if _, err := Write(context.Background(), w, Options{Size: 4 << 20}, ReaderSource(bytes.NewReader(dense), 4<<20, 0)); !errors.Is(err, errFail) {
		t.Errorf("writer error: got %v", err)
	}
}

var errFail = errors.New("disk full")

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		return 0, errFail
	}
	w.after -= len(p)
	return len(p), nil
}

func TestReaderErrors(t *testing.T) {
	raw := makeRaw(4<<20, 6, region{0, 1 << 20, false})
	good := buildVMDK(t, raw, Options{CID: 1})
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	end := len(good)
	cases := []struct {
		name string
		img  []byte
		kind error
	}{
		{"empty", nil, ErrTruncated},
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b }), ErrMagic},
		{"bad version", mutate(func(b []byte) []byte { b[4] = 9; return b }), ErrUnsupported},
		{"bad grain size", mutate(func(b []byte) []byte { b[20] = 100; return b }), ErrUnsupported},
		{"truncated", good[:end-SectorSize], ErrMarker},
		{"no EOS", mutate(func(b []byte) []byte { b[end-500] = 1; return b }), ErrMarker},
		{"footer GD beyond end", mutate(func(b []byte) []byte { b[end-1024+56+3] = 0x7f; return b }), ErrTable},
		{"bad compression", mutate(func(b []byte) []byte { b[77] = 5; return b }), ErrUnsupported},
		{"grain LBA mismatch", mutate(func(b []byte) []byte { b[overheadSectors*SectorSize] = 9; return b }), ErrMarker},
		{"corrupt grain", mutate(func(b []byte) []byte {
			clear(b[overheadSectors*SectorSize+12 : overheadSectors*SectorSize+40])
			return b
		}), ErrCompressed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewReader(bytes.NewReader(tc.img), int64(len(tc.img)))
			if err == nil {
				_, err = io.Copy(io.Discard, v.Raw())
			}
			if !errors.Is(err, tc.kind) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want %v and ErrInvalid", err, tc.kind)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err %T is not a *FormatError", err)
			}
		})
	}
}
