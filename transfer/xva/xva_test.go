package xva

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

const testOVA = `<value><struct><member><name>version</name><value><struct></struct></value></member></struct></value>`

// diskData returns size bytes where the listed 1 MiB chunks hold random data.
func diskData(size int64, seed uint64, chunks ...int64) []byte {
	b := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, c := range chunks {
		for i := c * ChunkSize; i < min((c+1)*ChunkSize, size); i++ {
			b[i] = byte(rng.Uint32())
		}
	}
	return b
}

type testDisk struct {
	ref  string
	data []byte
}

func (d testDisk) disk() Disk {
	return Disk{Ref: d.ref, Size: int64(len(d.data)), Data: bytes.NewReader(d.data)}
}

func writeXVA(t testing.TB, disks []testDisk, opts WriterOptions) []byte {
	t.Helper()
	var ds []Disk
	for _, d := range disks {
		ds = append(ds, d.disk())
	}
	var out bytes.Buffer
	n, err := Write(context.Background(), &out, []byte(testOVA), ds, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(out.Len()) {
		t.Fatalf("Write reported %d bytes, wrote %d", n, out.Len())
	}
	return out.Bytes()
}

// entries lists the names and sizes of an uncompressed XVA's tar entries.
func entries(t testing.TB, xva []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(xva))
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, fmt.Sprintf("%s:%d", h.Name, h.Size))
	}
}

// readAll reads every disk of an XVA, giving each its size when sizes is set.
func readAll(t testing.TB, xva []byte, opts ReaderOptions, sizes map[string]int64) (map[string][]byte, []string, *Reader) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(xva), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := map[string][]byte{}
	var order []string
	for {
		d, err := r.NextDisk()
		if errors.Is(err, io.EOF) {
			return got, order, r
		}
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := sizes[d.Ref]; ok {
			d.SetSize(s)
		}
		b, err := io.ReadAll(d.Raw())
		if err != nil {
			t.Fatalf("disk %s: %v", d.Ref, err)
		}
		got[d.Ref] = b
		order = append(order, d.Ref)
	}
}

func sampleDisks() []testDisk {
	return []testDisk{
		{"Ref:9", diskData(ChunkSize+123, 1, 0, 1)},       // final short chunk
		{"Ref:10", diskData(5*ChunkSize+512, 2, 0, 2, 5)}, // sparse: chunks 1, 3, 4 omitted
		{"Ref:2", diskData(3*ChunkSize, 3)},               // all zero: only chunks 0 and 2
		{"Ref:3", diskData(4*ChunkSize, 4, 1)},            // zero chunk 0 still written
		{"Ref:30", diskData(ChunkSize/2, 5, 0)},           // single short chunk
	}
}

func TestRoundTrip(t *testing.T) {
	disks := sampleDisks()
	sizes := map[string]int64{}
	for _, d := range disks {
		sizes[d.ref] = int64(len(d.data))
	}
	for _, comp := range []Compression{None, Gzip, Zstd} {
		for _, withSizes := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/sizes=%v", comp, withSizes), func(t *testing.T) {
				xva := writeXVA(t, disks, WriterOptions{Compression: comp})
				var sz map[string]int64
				if withSizes {
					sz = sizes
				}
				got, order, r := readAll(t, xva, ReaderOptions{}, sz)
				if r.Compression() != comp {
					t.Errorf("detected %s, want %s", r.Compression(), comp)
				}
				if string(r.OVAXML()) != testOVA {
					t.Errorf("ova.xml = %q", r.OVAXML())
				}
				wantOrder := []string{"Ref:10", "Ref:2", "Ref:3", "Ref:30", "Ref:9"}
				if fmt.Sprint(order) != fmt.Sprint(wantOrder) {
					t.Errorf("disk order %v, want %v", order, wantOrder)
				}
				for _, d := range disks {
					if !bytes.Equal(got[d.ref], d.data) {
						t.Errorf("disk %s: %d bytes read back, want %d, equal=%v", d.ref, len(got[d.ref]), len(d.data), bytes.Equal(got[d.ref], d.data))
					}
				}
			})
		}
	}
}

func TestLayout(t *testing.T) {
	xva := writeXVA(t, sampleDisks(), WriterOptions{ModTime: time.Unix(1700000000, 0)})
	want := []string{
		fmt.Sprintf("ova.xml:%d", len(testOVA)),
		"Ref:10/00000000:1048576", "Ref:10/00000000.xxhash:16",
		"Ref:10/00000002:1048576", "Ref:10/00000002.xxhash:16",
		"Ref:10/00000005:512", "Ref:10/00000005.xxhash:16",
		"Ref:2/00000000:1048576", "Ref:2/00000000.xxhash:16",
		"Ref:2/00000002:1048576", "Ref:2/00000002.xxhash:16",
		"Ref:3/00000000:1048576", "Ref:3/00000000.xxhash:16",
		"Ref:3/00000001:1048576", "Ref:3/00000001.xxhash:16",
		"Ref:3/00000003:1048576", "Ref:3/00000003.xxhash:16",
		"Ref:30/00000000:524288", "Ref:30/00000000.xxhash:16",
		"Ref:9/00000000:1048576", "Ref:9/00000000.xxhash:16",
		"Ref:9/00000001:123", "Ref:9/00000001.xxhash:16",
	}
	if got := entries(t, xva); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries:\n got %v\nwant %v", got, want)
	}
	// The checksum text is the uppercase %016X of XXH64 (seed 0).
	tr := tar.NewReader(bytes.NewReader(xva))
	var last []byte
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		if h.Name == "Ref:9/00000001.xxhash" {
			if w := fmt.Sprintf("%016X", xxhash.Sum64(last)); string(b) != w {
				t.Errorf("checksum %q, want %q", b, w)
			}
		}
		last = b
	}
}

// TestSmallFirstDisk covers XAPI's global first-chunk length: when the
// archive's first chunk is short, later disks are written without omissions
// and still read back correctly.
func TestSmallFirstDisk(t *testing.T) {
	disks := []testDisk{{"Ref:1", diskData(4096, 1, 0)}, {"Ref:2", diskData(4*ChunkSize, 2, 3)}}
	xva := writeXVA(t, disks, WriterOptions{})
	if n := len(entries(t, xva)); n != 1+2*(1+4) {
		t.Errorf("%d entries, want 11 (no chunk of Ref:2 omitted)", n)
	}
	got, _, _ := readAll(t, xva, ReaderOptions{}, nil)
	for _, d := range disks {
		if !bytes.Equal(got[d.ref], d.data) {
			t.Errorf("disk %s differs", d.ref)
		}
	}
}

// fakeClock advances by step at every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func TestKeepAlive(t *testing.T) {
	data := diskData(8*ChunkSize, 7, 0, 6)
	clock := &fakeClock{t: time.Unix(1e9, 0), step: 3 * time.Second}
	var out bytes.Buffer
	_, err := Write(context.Background(), &out, []byte(testOVA), []Disk{{Ref: "Ref:4", Size: int64(len(data)), Data: bytes.NewReader(data)}},
		WriterOptions{KeepAlive: 5 * time.Second, now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	names := entries(t, out.Bytes())
	empty := 0
	for _, n := range names {
		var ref string
		var num, size int
		if _, err := fmt.Sscanf(n, "Ref:4/%08d:%d", &num, &size); err == nil && size == 0 {
			empty++
		}
		_ = ref
	}
	if empty == 0 {
		t.Fatalf("no keep-alive chunk in %v", names)
	}
	got, _, _ := readAll(t, out.Bytes(), ReaderOptions{}, map[string]int64{"Ref:4": int64(len(data))})
	if !bytes.Equal(got["Ref:4"], data) {
		t.Error("disk with keep-alive chunks read back wrong")
	}
}

type entry struct {
	name string
	data []byte
}

func xxh(b []byte) []byte { return []byte(fmt.Sprintf("%016X", xxhash.Sum64(b))) }

func sha(b []byte) []byte { s := sha1.Sum(b); return []byte(hex.EncodeToString(s[:])) }

func tarOf(t testing.TB, es ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Size: int64(len(e.data)), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	return b.Bytes()
}

// TestXAPIKeepAliveLayout reads the layout XAPI's raw exporter produces: an
// empty chunk under the current number, the data at that offset under the
// next number.
func TestXAPIKeepAliveLayout(t *testing.T) {
	c0 := bytes.Repeat([]byte{1}, ChunkSize)
	c3 := bytes.Repeat([]byte{3}, ChunkSize)
	last := bytes.Repeat([]byte{9}, 100)
	x := tarOf(t,
		entry{"ova.xml", []byte(testOVA)},
		entry{"Ref:1/00000000", c0}, entry{"Ref:1/00000000.xxhash", xxh(c0)},
		entry{"Ref:1/00000002", nil}, entry{"Ref:1/00000002.xxhash", xxh(nil)}, // keep-alive at offset 2 MiB
		entry{"Ref:1/00000004", c3}, entry{"Ref:1/00000004.checksum", sha(c3)}, // offset 3 MiB (one skipped)
		entry{"Ref:1/00000005", last}, entry{"Ref:1/00000005.xxhash", xxh(last)},
	)
	want := make([]byte, 4*ChunkSize+100)
	copy(want, c0)
	copy(want[3*ChunkSize:], c3)
	copy(want[4*ChunkSize:], last)
	for _, sized := range []bool{true, false} {
		var sizes map[string]int64
		if sized {
			sizes = map[string]int64{"Ref:1": int64(len(want))}
		}
		got, _, _ := readAll(t, x, ReaderOptions{}, sizes)
		if !bytes.Equal(got["Ref:1"], want) {
			t.Errorf("sized=%v: content differs (%d bytes)", sized, len(got["Ref:1"]))
		}
	}
}

func TestReaderErrors(t *testing.T) {
	c := []byte("chunk data")
	ova := entry{"ova.xml", []byte(testOVA)}
	good := func(name string) []entry { return []entry{{name, c}, {name + ".xxhash", xxh(c)}} }
	cat := func(es ...[]entry) []entry {
		var out []entry
		for _, e := range es {
			out = append(out, e...)
		}
		return out
	}
	gz := writeXVA(t, sampleDisks()[:1], WriterOptions{Compression: Gzip})
	corruptGz := bytes.Clone(gz)
	corruptGz[2] = 7 // compression method other than deflate
	cases := []struct {
		name  string
		input []byte
		opts  ReaderOptions
		size  int64
		kind  error
		msg   string
	}{
		{name: "empty input", input: nil, kind: ErrTruncated, msg: "too short"},
		{name: "wrong first entry", input: tarOf(t, cat(good("Ref:1/00000000"), []entry{ova})...), kind: ErrUnexpectedEntry, msg: "first entry must be ova.xml"},
		{name: "no entries", input: tarOf(t), kind: ErrUnexpectedEntry, msg: "empty archive"},
		{name: "ova.xml too large", input: tarOf(t, ova), opts: ReaderOptions{MaxOVAXMLSize: 10}, kind: ErrTooLarge, msg: "exceed the limit"},
		{name: "xxhash mismatch", input: tarOf(t, ova, entry{"Ref:1/00000000", c}, entry{"Ref:1/00000000.xxhash", []byte("0000000000000000")}), kind: ErrChecksum, msg: "checksum mismatch"},
		{name: "lowercase xxhash", input: tarOf(t, ova, entry{"Ref:1/00000000", c}, entry{"Ref:1/00000000.xxhash", bytes.ToLower(xxh(c))}), kind: ErrChecksum, msg: "checksum mismatch"},
		{name: "sha1 mismatch", input: tarOf(t, ova, entry{"Ref:1/00000000", c}, entry{"Ref:1/00000000.checksum", sha([]byte("x"))}), kind: ErrChecksum, msg: "checksum mismatch"},
		{name: "missing checksum", input: tarOf(t, cat([]entry{ova}, []entry{{"Ref:1/00000000", c}}, good("Ref:1/00000001"))...), kind: ErrUnexpectedEntry, msg: "expected the checksum entry"},
		{name: "checksum at end of archive", input: tarOf(t, ova, entry{"Ref:1/00000000", c}), kind: ErrTruncated, msg: "before the chunk's checksum"},
		{name: "unknown checksum kind", input: tarOf(t, ova, entry{"Ref:1/00000000", c}, entry{"Ref:1/00000000.md5", c}), kind: ErrUnexpectedEntry, msg: "expected the checksum entry"},
		{name: "suffix not increasing", input: tarOf(t, cat([]entry{ova}, good("Ref:1/00000001"), good("Ref:1/00000001"))...), kind: ErrOrder, msg: "does not increase"},
		{name: "suffix decreasing", input: tarOf(t, cat([]entry{ova}, good("Ref:1/00000003"), good("Ref:1/00000002"))...), kind: ErrOrder, msg: "does not increase"},
		{name: "non-numeric suffix", input: tarOf(t, cat([]entry{ova}, good("Ref:1/abc"))...), kind: ErrUnexpectedEntry, msg: "expected a data chunk"},
		{name: "stray file", input: tarOf(t, ova, entry{"README", c}), kind: ErrUnexpectedEntry, msg: "expected a disk chunk"},
		{name: "chunk past size", input: tarOf(t, cat([]entry{ova}, good("Ref:1/00000000"))...), size: 4, kind: ErrTooLarge, msg: "past the disk size"},
		{name: "archive shorter than size", input: tarOf(t, cat([]entry{ova}, good("Ref:1/00000000"))...), size: 100, kind: ErrTruncated, msg: "archive ends at offset 10"},
		{name: "other disk before size reached", input: tarOf(t, cat([]entry{ova}, good("Ref:1/00000000"), good("Ref:2/00000000"))...), size: 100, kind: ErrUnexpectedEntry, msg: "expected a chunk of Ref:1"},
		{name: "disk repeated after its size", input: tarOf(t, cat([]entry{ova}, good("Ref:1/00000000"), good("Ref:1/00000001"))...), size: 10, kind: ErrOrder, msg: "disk Ref:1 follows disk Ref:1"},
		{name: "disks out of order", input: tarOf(t, cat([]entry{ova}, good("Ref:2/00000000"), good("Ref:10/00000000"))...), kind: ErrOrder, msg: "increasing order"},
		{name: "absurd skip", input: tarOf(t, cat([]entry{ova}, good("Ref:1/00000000"), good("Ref:1/99999999999999"))...), kind: ErrTooLarge, msg: "past the"},
		{name: "truncated tar", input: tarOf(t, cat([]entry{ova}, good("Ref:1/00000000"))...)[:1100], kind: ErrTruncated, msg: "ends early"},
		{name: "corrupt gzip", input: corruptGz, kind: ErrCorrupt, msg: "undecodable"},
		{name: "truncated zstd", input: writeXVA(t, sampleDisks()[:1], WriterOptions{Compression: Zstd})[:3000], kind: ErrTruncated, msg: "ends early"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := consume(tc.input, tc.opts, tc.size)
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

// consume reads a whole archive, giving every disk size (if positive).
func consume(input []byte, opts ReaderOptions, size int64) error {
	r, err := NewReader(bytes.NewReader(input), opts)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		d, err := r.NextDisk()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if size > 0 {
			d.SetSize(size)
		}
		if _, err := io.Copy(io.Discard, d.Raw()); err != nil {
			return err
		}
	}
}

func TestIgnoreChecksums(t *testing.T) {
	c := []byte("data")
	x := tarOf(t, entry{"ova.xml", []byte(testOVA)}, entry{"Ref:1/00000000", c}, entry{"Ref:1/00000000.xxhash", []byte("WRONG")})
	if err := consume(x, ReaderOptions{IgnoreChecksums: true}, 0); err != nil {
		t.Fatalf("force import failed: %v", err)
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestIOErrorIsNotInvalid(t *testing.T) {
	boom := errors.New("connection reset")
	x := writeXVA(t, sampleDisks()[:1], WriterOptions{})
	err := consumeReader(io.MultiReader(bytes.NewReader(x[:5000]), failingReader{boom}))
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
		t.Errorf("error %v: want the I/O error, not ErrInvalid", err)
	}
}

func consumeReader(in io.Reader) error {
	r, err := NewReader(in, ReaderOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		d, err := r.NextDisk()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, d.Raw()); err != nil {
			return err
		}
	}
}

func TestWriterErrors(t *testing.T) {
	ctx := context.Background()
	w, err := NewWriter(io.Discard, []byte(testOVA), WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteDisk(ctx, "Ref:5", 10, bytes.NewReader(make([]byte, 10))); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ref  string
		size int64
		data io.Reader
	}{
		{"ref not increasing", "Ref:4", 10, bytes.NewReader(make([]byte, 10))},
		{"same ref", "Ref:5", 10, bytes.NewReader(make([]byte, 10))},
		{"slash in ref", "Ref:6/x", 10, bytes.NewReader(make([]byte, 10))},
		{"short data", "Ref:7", 3 * ChunkSize, bytes.NewReader(make([]byte, ChunkSize))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := w.WriteDisk(ctx, tc.ref, tc.size, tc.data); err == nil {
				t.Error("no error")
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.WriteDisk(cctx, "Ref:8", ChunkSize, bytes.NewReader(make([]byte, ChunkSize))); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
}

func TestParseCompression(t *testing.T) {
	for in, want := range map[string]Compression{"true": Gzip, "gzip": Gzip, "zstd": Zstd, "false": None, "": None, "xz": None} {
		if got := ParseCompression(in); got != want {
			t.Errorf("ParseCompression(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestWithoutOVAXML(t *testing.T) {
	data := diskData(3*ChunkSize+7, 8, 2)
	var out bytes.Buffer
	if _, err := Write(context.Background(), &out, nil, []Disk{{Ref: "vdi", Size: int64(len(data)), Data: bytes.NewReader(data)}}, WriterOptions{WithoutOVAXML: true}); err != nil {
		t.Fatal(err)
	}
	if names := entries(t, out.Bytes()); names[0] != "vdi/00000000:1048576" {
		t.Fatalf("first entry %s", names[0])
	}
	if _, err := NewReader(bytes.NewReader(out.Bytes()), ReaderOptions{}); !errors.Is(err, ErrUnexpectedEntry) {
		t.Errorf("default reader accepted an archive without ova.xml: %v", err)
	}
	got, _, r := readAll(t, out.Bytes(), ReaderOptions{WithoutOVAXML: true}, map[string]int64{"vdi": int64(len(data))})
	if r.OVAXML() != nil || !bytes.Equal(got["vdi"], data) {
		t.Error("chunk-only archive read back wrong")
	}
}
