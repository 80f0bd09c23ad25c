package vhd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
	"time"
)

// makeRaw returns a raw disk of size bytes in which the blocks listed in
// filled hold pseudo-random data (the last sector of block 1, if filled, is
// left zero to exercise partial content) and the rest is zero.
func makeRaw(size int64, seed uint64, filled ...int64) []byte {
	raw := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, b := range filled {
		start := b * BlockSize
		end := min(start+BlockSize, size)
		if start >= size {
			continue
		}
		for i := start; i < end; i += 8 {
			binary.LittleEndian.PutUint64(raw[i:min(i+8, end)], rng.Uint64())
		}
	}
	return raw
}

// buildVHD streams raw into a sparse VHD and checks that Size was exact.
func buildVHD(t testing.TB, raw []byte, opts Options) []byte {
	t.Helper()
	opts.Size = int64(len(raw))
	blocks, err := ScanBlocks(context.Background(), bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStream(opts, blocks, ReaderAtSource(bytes.NewReader(raw), int64(len(raw)), blocks))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n, err := s.WriteTo(&out)
	if err != nil {
		t.Fatal(err)
	}
	if n != s.Size() || int64(out.Len()) != s.Size() {
		t.Fatalf("wrote %d bytes (buffer %d), Size() announced %d", n, out.Len(), s.Size())
	}
	return out.Bytes()
}

// streamOnly hides io.WriterTo/Seeker so that readers see a plain stream.
type streamOnly struct{ io.Reader }

var sizeCases = []struct {
	name   string
	size   int64
	filled []int64
}{
	{"empty", 0, nil},
	{"three sectors", 3 * 512, []int64{0}},
	{"one block exactly", BlockSize, []int64{0}},
	{"aligned sparse", 8 * BlockSize, []int64{1, 2, 6}},
	{"not CHS aligned, partial last block", 15000064, []int64{0, 3, 7}},
	{"all zero", 5*BlockSize + 1024, nil},
	{"large sparse", 1<<28 + 512, []int64{0, 50, 127, 128}},
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range sizeCases {
		t.Run(tc.name, func(t *testing.T) {
			raw := makeRaw(tc.size, 7, tc.filled...)
			img := buildVHD(t, raw, Options{})
			wantLen := int64(TableOffset) + batSize((tc.size+BlockSize-1)/BlockSize) +
				int64(len(tc.filled))*(SectorSize+BlockSize) + FooterSize
			if int64(len(img)) != wantLen {
				t.Errorf("image is %d bytes, want %d", len(img), wantLen)
			}

			for _, mode := range []string{"stream", "one-byte stream", "readerAt"} {
				var r *Reader
				var err error
				switch mode {
				case "stream":
					r, err = NewReader(streamOnly{bytes.NewReader(img)})
				case "one-byte stream":
					if len(img) > 16<<20 {
						continue // byte-at-a-time reads of big images only cost time
					}
					r, err = NewReader(iotest.OneByteReader(bytes.NewReader(img)))
				default:
					r, err = NewReaderAt(bytes.NewReader(img), int64(len(img)))
				}
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if r.Size() != tc.size || r.Allocated() != len(tc.filled) {
					t.Errorf("%s: size %d allocated %d, want %d and %d", mode, r.Size(), r.Allocated(), tc.size, len(tc.filled))
				}
				got, err := io.ReadAll(r.Raw())
				if err != nil {
					t.Fatalf("%s: raw read: %v", mode, err)
				}
				if !bytes.Equal(got, raw) {
					t.Fatalf("%s: raw content differs (got %d bytes, want %d)", mode, len(got), len(raw))
				}
			}
		})
	}
}

func TestStreamLayout(t *testing.T) {
	raw := makeRaw(3*BlockSize+4096, 1, 0, 2)
	uid := NewUUID()
	ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	img := buildVHD(t, raw, Options{UniqueID: uid, Timestamp: ts})

	if !bytes.Equal(img[:FooterSize], img[len(img)-FooterSize:]) {
		t.Error("footer copy at 0 differs from the footer at the end")
	}
	f, err := ParseFooter(img[:FooterSize], 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.UniqueID != uid || !f.Timestamp.Equal(ts) || f.DiskType != DiskTypeDynamic ||
		f.DataOffset != 512 || f.CurrentSize != uint64(len(raw)) || string(f.CreatorApplication[:]) != "tap\x00" {
		t.Errorf("footer = %+v", f)
	}
	h, err := ParseHeader(img[512:1536], 512)
	if err != nil {
		t.Fatal(err)
	}
	if h.TableOffset != 2048 || h.MaxTableEntries != 4 || h.BlockSize != BlockSize {
		t.Errorf("header = %+v", h)
	}
	if !isZero(img[1536:2048]) {
		t.Error("bytes 1536-2047 are not zero")
	}
	be := binary.BigEndian
	dataStart := uint32((2048 + 512) / 512)
	want := []uint32{dataStart, unusedEntry, dataStart + (512+BlockSize)/512, unusedEntry}
	for i, w := range want {
		if got := be.Uint32(img[2048+4*i:]); got != w {
			t.Errorf("BAT[%d] = %#x, want %#x", i, got, w)
		}
	}
	for _, e := range []uint32{want[0], want[2]} {
		bm := img[int64(e)*512 : int64(e)*512+512]
		if !bytes.Equal(bm, bytes.Repeat([]byte{0xFF}, 512)) {
			t.Errorf("bitmap at sector %d is not all ones", e)
		}
	}
}

func TestDifferencing(t *testing.T) {
	raw := makeRaw(4*BlockSize, 3, 1)
	parent := Parent{UniqueID: NewUUID(), Timestamp: time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC), Name: "base-vdi.vhd"}
	img := buildVHD(t, raw, Options{Parent: &parent})
	r, err := NewReader(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header()
	if r.Footer().DiskType != DiskTypeDifferencing || h.ParentUniqueID != parent.UniqueID ||
		!h.ParentTimestamp.Equal(parent.Timestamp) || h.ParentUnicodeName != parent.Name {
		t.Errorf("footer type %v, header parent %s %v %q", r.Footer().DiskType, h.ParentUniqueID, h.ParentTimestamp, h.ParentUnicodeName)
	}
	idx, data, err := r.Next()
	if err != nil || idx != 1 || !bytes.Equal(data, raw[BlockSize:2*BlockSize]) {
		t.Fatalf("Next = %d, %d bytes, %v", idx, len(data), err)
	}
	if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("second Next = %v, want EOF", err)
	}
}

// TestReaderFeedsStream re-streams a parsed VHD through NewStream.
func TestReaderFeedsStream(t *testing.T) {
	raw := makeRaw(6*BlockSize+512, 9, 0, 4, 6)
	img := buildVHD(t, raw, Options{})
	r, err := NewReader(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStream(Options{Size: r.Size(), UniqueID: r.Footer().UniqueID, Timestamp: r.Footer().Timestamp}, []int64{0, 4, 6}, r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, img) {
		t.Error("re-streamed VHD differs from the original")
	}
}

func TestReaderSourceAllBlocks(t *testing.T) {
	raw := makeRaw(5*BlockSize+1536, 4, 1, 5)
	s, err := NewStream(Options{Size: int64(len(raw))}, AllBlocks(int64(len(raw))), ReaderSource(bytes.NewReader(raw), int64(len(raw))))
	if err != nil {
		t.Fatal(err)
	}
	img, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(img)) != s.Size() {
		t.Fatalf("got %d bytes, Size() %d", len(img), s.Size())
	}
	r, err := NewReader(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if r.Allocated() != 6 {
		t.Errorf("allocated %d, want 6", r.Allocated())
	}
	got, err := io.ReadAll(r.Raw())
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("raw differs: %v", err)
	}

	// A short raw stream is an error, not a silently zero-filled disk.
	s, _ = NewStream(Options{Size: int64(len(raw))}, AllBlocks(int64(len(raw))), ReaderSource(bytes.NewReader(raw[:BlockSize+5]), int64(len(raw))))
	if _, err := io.Copy(io.Discard, s); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short source: err = %v, want io.ErrUnexpectedEOF", err)
	}
}

type listSource struct {
	idx  []int64
	data [][]byte
}

func (l *listSource) Next() (int64, []byte, error) {
	if len(l.idx) == 0 {
		return 0, nil, io.EOF
	}
	i, d := l.idx[0], l.data[0]
	l.idx, l.data = l.idx[1:], l.data[1:]
	return i, d, nil
}

func TestStreamErrors(t *testing.T) {
	block := bytes.Repeat([]byte{1}, 100)
	cases := []struct {
		name   string
		size   int64
		blocks []int64
		src    *listSource
		newErr bool
	}{
		{name: "negative size", size: -1, newErr: true},
		{name: "too large", size: MaxSize + 1, newErr: true},
		{name: "block outside disk", size: BlockSize, blocks: []int64{1}, newErr: true},
		{name: "unsorted list", size: 4 * BlockSize, blocks: []int64{2, 1}, newErr: true},
		{name: "unlisted block", size: 4 * BlockSize, blocks: []int64{1}, src: &listSource{idx: []int64{0}, data: [][]byte{block}}},
		{name: "extra block at end", size: 4 * BlockSize, blocks: []int64{1}, src: &listSource{idx: []int64{1, 3}, data: [][]byte{block, block}}},
		{name: "oversized block", size: 4 * BlockSize, blocks: []int64{1}, src: &listSource{idx: []int64{1}, data: [][]byte{make([]byte, BlockSize+1)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var src BlockSource
			if tc.src != nil {
				src = tc.src
			}
			s, err := NewStream(Options{Size: tc.size}, tc.blocks, src)
			if tc.newErr {
				if err == nil {
					t.Fatal("NewStream accepted invalid options")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, s); err == nil {
				t.Fatal("stream completed despite a bad block source")
			}
		})
	}
}

// resum recomputes the checksum of the footer or header at b.
func resum(b []byte, at int) {
	binary.BigEndian.PutUint32(b[at:], 0)
	binary.BigEndian.PutUint32(b[at:], checksum(b, at))
}

func TestReaderErrors(t *testing.T) {
	raw := makeRaw(4*BlockSize, 5, 0, 1, 3)
	good := buildVHD(t, raw, Options{})
	end := len(good) - FooterSize
	cases := []struct {
		name   string
		mutate func(b []byte) []byte
		kind   error
		msg    string
	}{
		{"footer checksum", func(b []byte) []byte { b[40]++; return b }, ErrChecksum, "vhd: footer checksum mismatch"},
		{"footer cookie", func(b []byte) []byte { b[0] = 'X'; return b }, ErrCookie, "footer cookie"},
		{"header checksum", func(b []byte) []byte { b[512+28]++; return b }, ErrChecksum, "dynamic header checksum mismatch"},
		{"header cookie", func(b []byte) []byte { b[512] = 'X'; resum(b[512:1536], 36); return b }, ErrCookie, "dynamic header cookie"},
		{"unknown disk type", func(b []byte) []byte { b[63] = 9; resum(b[:512], 64); return b }, ErrUnsupported, "disk type 9"},
		{"fixed in stream", func(b []byte) []byte { b[63] = 2; resum(b[:512], 64); return b }, ErrUnsupported, "fixed VHD"},
		{"absurd size", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[48:], 1<<60)
			resum(b[:512], 64)
			return b
		}, ErrTooLarge, "virtual size"},
		{"absurd BAT", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[512+28:], 1<<30)
			resum(b[512:1536], 36)
			return b
		}, ErrTooLarge, "BAT of"},
		{"BAT too small", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[512+28:], 2)
			resum(b[512:1536], 36)
			return b
		}, ErrBAT, "needs 4 blocks"},
		{"odd block size", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[512+32:], 3000)
			resum(b[512:1536], 36)
			return b
		}, ErrUnsupported, "block size 3000"},
		{"block over metadata", func(b []byte) []byte { binary.BigEndian.PutUint32(b[2048:], 2); return b }, ErrBAT, "overlaps the metadata"},
		{"overlapping blocks", func(b []byte) []byte {
			e := binary.BigEndian.Uint32(b[2048:])
			binary.BigEndian.PutUint32(b[2048+4:], e+1)
			return b
		}, ErrBAT, "overlaps block"},
		{"truncated in block", func(b []byte) []byte { return b[:4096+BlockSize/2] }, ErrTruncated, "stream ends inside the block"},
		{"truncated BAT", func(b []byte) []byte { return b[:2050] }, ErrTruncated, "inside the BAT"},
		{"missing trailing footer", func(b []byte) []byte { return b[:end] }, ErrTruncated, "without the trailing footer"},
		{"trailing footer of another disk", func(b []byte) []byte { b[end+70]++; resum(b[end:], 64); return b }, ErrFooterMismatch, "differs from the copy"},
		{"trailing footer corrupt", func(b []byte) []byte { b[end+70]++; return b }, ErrChecksum, "footer checksum mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.mutate(bytes.Clone(good))
			var err error
			r, err := NewReader(bytes.NewReader(img))
			if err == nil {
				_, err = io.Copy(io.Discard, r.Raw())
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.kind) || !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not match %v and ErrInvalid", err, tc.kind)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tc.msg)) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

// TestOutOfOrderBlocks swaps the file positions of two blocks: a stream
// yields them in file order, Raw needs index order and reports ErrOrder, and
// NewReaderAt handles any order.
func TestOutOfOrderBlocks(t *testing.T) {
	raw := makeRaw(2*BlockSize, 11, 0, 1)
	img := buildVHD(t, raw, Options{})
	const full = SectorSize + BlockSize
	a, b := 2560, 2560+full
	swapped := bytes.Clone(img)
	copy(swapped[a:], img[b:b+full])
	copy(swapped[b:], img[a:a+full])
	e0 := binary.BigEndian.Uint32(img[2048:])
	e1 := binary.BigEndian.Uint32(img[2052:])
	binary.BigEndian.PutUint32(swapped[2048:], e1)
	binary.BigEndian.PutUint32(swapped[2052:], e0)

	r, err := NewReader(bytes.NewReader(swapped))
	if err != nil {
		t.Fatal(err)
	}
	var order []int64
	for {
		idx, data, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, raw[idx*BlockSize:(idx+1)*BlockSize]) {
			t.Errorf("block %d content differs", idx)
		}
		order = append(order, idx)
	}
	if len(order) != 2 || order[0] != 1 || order[1] != 0 {
		t.Errorf("stream order %v, want [1 0]", order)
	}

	r, _ = NewReader(bytes.NewReader(swapped))
	if _, err := io.Copy(io.Discard, r.Raw()); !errors.Is(err, ErrOrder) {
		t.Errorf("Raw on an out-of-order stream: %v, want ErrOrder", err)
	}

	ra, err := NewReaderAt(bytes.NewReader(swapped), int64(len(swapped)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(ra.Raw())
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("ReaderAt raw differs: %v", err)
	}
}

func TestBitmapZeroesAbsentSectors(t *testing.T) {
	raw := makeRaw(BlockSize, 2, 0)
	img := buildVHD(t, raw, Options{})
	// Clear the bit of sector 9 (byte 1, bit 1 from the MSB).
	img[2560+1] = 0xBF
	r, err := NewReader(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	_, data, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(raw)
	clear(want[9*512 : 10*512])
	if !bytes.Equal(data, want) {
		t.Error("sector absent from the bitmap was not zeroed")
	}
	if r.Bitmap()[1] != 0xBF {
		t.Errorf("Bitmap()[1] = %#x", r.Bitmap()[1])
	}
}

func TestGeometry(t *testing.T) {
	cases := []struct {
		size int64
		want Geometry
	}{
		{1 << 30, Geometry{2080, 16, 63}},
		{10 << 20, Geometry{301, 4, 17}},
		{MaxSize, Geometry{65535, 16, 255}},
	}
	for _, tc := range cases {
		if got := GeometryForSize(tc.size); got != tc.want {
			t.Errorf("GeometryForSize(%d) = %+v, want %+v", tc.size, got, tc.want)
		}
	}
}

func TestUUID(t *testing.T) {
	u := NewUUID()
	p, err := ParseUUID(u.String())
	if err != nil || p != u {
		t.Fatalf("ParseUUID(%s) = %s, %v", u, p, err)
	}
	if _, err := ParseUUID("nope"); err == nil {
		t.Error("ParseUUID accepted garbage")
	}
}

// TestScanBlocksSparseFile checks the SEEK_DATA/SEEK_HOLE path against the
// plain scan: data blocks found, explicitly written zero blocks dropped.
func TestScanBlocksSparseFile(t *testing.T) {
	const size = 10*BlockSize + 3*512
	p := filepath.Join(t.TempDir(), "sparse.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writes := []struct {
		off  int64
		data []byte
	}{
		{BlockSize + 5000, []byte("some data")},
		{3 * BlockSize, make([]byte, BlockSize)}, // allocated zeros
		{6*BlockSize - 4, []byte("straddles two blocks")},
		{size - 10, []byte("tail")},
	}
	for _, w := range writes {
		if _, err := f.WriteAt(w.data, w.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ScanBlocks(context.Background(), f, size)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ScanBlocks(context.Background(), bytes.NewReader(content), size)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(want) != "[1 5 6 10]" {
		t.Errorf("file scan %v, plain scan %v", got, want)
	}
}
