package xva

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// ChunkSize is the size of XVA disk chunks (XAPI's chunk_size).
const ChunkSize = 1 << 20

// OVAXMLName is the name of the first entry of every XVA.
const OVAXMLName = "ova.xml"

// Compression is the compression of a whole XVA stream.
type Compression int

// Compressions, as XAPI's /export use_compression parameter selects them.
const (
	None Compression = iota
	Gzip
	Zstd
)

// String returns "none", "gzip" or "zstd".
func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "none"
}

// ParseCompression maps XAPI's use_compression query value: "true" and
// "gzip" mean gzip, "zstd" means zstd, anything else means none.
func ParseCompression(s string) Compression {
	switch s {
	case "true", "gzip":
		return Gzip
	case "zstd":
		return Zstd
	}
	return None
}

// Disk is one VDI to write into an XVA.
type Disk struct {
	// Ref is the VDI's id in ova.xml, e.g. "Ref:12"; its chunks are named Ref/%08d.
	Ref string
	// Size is the virtual size in bytes.
	Size int64
	// Data yields exactly Size bytes of raw disk content.
	Data io.Reader
}

// WriterOptions configure a Writer.
type WriterOptions struct {
	// Compression compresses the whole stream.
	Compression Compression
	// ModTime is the mtime of every tar entry; zero means time.Now().
	ModTime time.Time
	// KeepAlive, when positive, makes the writer emit an empty chunk (and its
	// checksum) when it has written nothing for that long while skipping zero
	// chunks, as XAPI does every 5 s so that proxies keep the connection open.
	KeepAlive time.Duration
	// WithoutOVAXML omits the ova.xml entry (ovaXML is ignored), for the
	// bare chunk archives of XAPI's /export_raw_vdi?format=tar (prefix "vdi").
	WithoutOVAXML bool

	now func() time.Time // clock, for tests
}

// Writer writes an XVA archive: ova.xml, then each disk's chunks, each data
// chunk followed by its .xxhash checksum entry.
type Writer struct {
	count    *countWriter
	comp     io.WriteCloser // compressor, nil for None
	tw       *tar.Writer
	opts     WriterOptions
	lastRef  string
	firstLen int64 // length of the archive's first chunk, -1 before it
	lastSent time.Time
	buf      []byte
	closed   bool
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// NewWriter starts an XVA on w and writes the ova.xml entry. ovaXML is the
// bare XML-RPC <value> describing the exported objects (xapi.md §8.2); the
// caller encodes the XAPI records.
func NewWriter(w io.Writer, ovaXML []byte, opts WriterOptions) (*Writer, error) {
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.ModTime.IsZero() {
		opts.ModTime = opts.now()
	}
	opts.ModTime = opts.ModTime.Truncate(time.Second)
	xw := &Writer{count: &countWriter{w: w}, opts: opts, firstLen: -1}
	var dst io.Writer = xw.count
	switch opts.Compression {
	case None:
	case Gzip:
		xw.comp = gzip.NewWriter(xw.count)
	case Zstd:
		zw, err := zstd.NewWriter(xw.count, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("xva: zstd: %w", err)
		}
		xw.comp = zw
	default:
		return nil, fmt.Errorf("xva: unknown compression %d", opts.Compression)
	}
	if xw.comp != nil {
		dst = xw.comp
	}
	xw.tw = tar.NewWriter(dst)
	if !opts.WithoutOVAXML {
		if err := xw.entry(OVAXMLName, ovaXML); err != nil {
			return nil, err
		}
	}
	xw.lastSent = opts.now()
	return xw, nil
}

func (w *Writer) entry(name string, data []byte) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o644,
		Size:     int64(len(data)),
		ModTime:  w.opts.ModTime,
		Format:   tar.FormatUSTAR,
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("xva: writing %s: %w", name, err)
	}
	if _, err := w.tw.Write(data); err != nil {
		return fmt.Errorf("xva: writing %s: %w", name, err)
	}
	return nil
}

// chunk writes one data chunk and its .xxhash entry.
func (w *Writer) chunk(ref string, n int64, data []byte) error {
	name := fmt.Sprintf("%s/%08d", ref, n)
	if err := w.entry(name, data); err != nil {
		return err
	}
	sum := fmt.Sprintf("%016X", xxhash.Sum64(data))
	if err := w.entry(name+".xxhash", []byte(sum)); err != nil {
		return err
	}
	if w.firstLen < 0 {
		w.firstLen = int64(len(data))
	}
	w.lastSent = w.opts.now()
	return nil
}

// WriteDisk writes the chunks of one disk: chunk 0 and the last chunk always,
// other chunks only when they hold a non-zero byte. Refs must be given in
// strictly increasing lexicographic order ("Ref:10" < "Ref:9"), XAPI's order.
//
// XAPI's importer counts every skipped chunk as long as the first chunk of
// the whole archive. When that chunk is shorter than ChunkSize (the first
// disk is smaller than 1 MiB), later disks are written without omissions so
// that XAPI still places their data correctly.
func (w *Writer) WriteDisk(ctx context.Context, ref string, size int64, data io.Reader) error {
	if w.closed {
		return errors.New("xva: WriteDisk after Close")
	}
	if ref == "" || strings.Contains(ref, "/") {
		return fmt.Errorf("xva: bad disk ref %q", ref)
	}
	if w.lastRef != "" && ref <= w.lastRef {
		return fmt.Errorf("xva: disk %q written after %q: refs must increase lexicographically", ref, w.lastRef)
	}
	if size < 0 {
		return fmt.Errorf("xva: disk %s has negative size %d", ref, size)
	}
	w.lastRef = ref
	if w.buf == nil {
		w.buf = make([]byte, ChunkSize)
	}
	var name int64 // chunk number: index plus keep-alives so far
	for off := int64(0); off < size; off += ChunkSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(size-off, ChunkSize)
		buf := w.buf[:n]
		if _, err := io.ReadFull(data, buf); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("xva: reading disk %s at offset %d: %w", ref, off, err)
		}
		firstOrLast := off == 0 || off+n >= size
		mustWrite := firstOrLast || (w.firstLen >= 0 && w.firstLen != ChunkSize)
		if !mustWrite && isZero(buf) {
			if w.opts.KeepAlive > 0 && w.opts.now().Sub(w.lastSent) >= w.opts.KeepAlive {
				if err := w.chunk(ref, name, nil); err != nil {
					return err
				}
				name++
			}
			name++
			continue
		}
		if err := w.chunk(ref, name, buf); err != nil {
			return err
		}
		name++
	}
	return nil
}

// Written returns the number of bytes written to the underlying writer so
// far (compressed bytes when compressing). After Close it is the total.
func (w *Writer) Written() int64 { return w.count.n }

// Close writes the tar trailer and flushes the compressor. It does not close
// the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.tw.Close(); err != nil {
		return fmt.Errorf("xva: closing tar: %w", err)
	}
	if w.comp != nil {
		if err := w.comp.Close(); err != nil {
			return fmt.Errorf("xva: closing %s: %w", w.opts.Compression, err)
		}
	}
	return nil
}

// Write writes a complete XVA to w: ova.xml, then the disks sorted by ref.
// It returns the number of bytes written to w.
func Write(ctx context.Context, w io.Writer, ovaXML []byte, disks []Disk, opts WriterOptions) (int64, error) {
	xw, err := NewWriter(w, ovaXML, opts)
	if err != nil {
		return 0, err
	}
	sorted := append([]Disk(nil), disks...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Ref < sorted[j].Ref })
	for _, d := range sorted {
		if err := xw.WriteDisk(ctx, d.Ref, d.Size, d.Data); err != nil {
			return xw.Written(), err
		}
	}
	err = xw.Close()
	return xw.Written(), err
}

// isZero reports whether b holds only zero bytes.
func isZero(b []byte) bool {
	for len(b) >= 32 {
		if binary.LittleEndian.Uint64(b)|binary.LittleEndian.Uint64(b[8:])|
			binary.LittleEndian.Uint64(b[16:])|binary.LittleEndian.Uint64(b[24:]) != 0 {
			return false
		}
		b = b[32:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
