package xva

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// Limits of the reader.
const (
	// DefaultMaxOVAXMLSize is the default bound on the ova.xml entry.
	DefaultMaxOVAXMLSize = 16 << 20
	// MaxChunkSize bounds one data chunk (XAPI writes at most ChunkSize).
	MaxChunkSize = 16 << 20
	// MaxDiskSize bounds the offsets a disk's chunks may reach (64 TiB).
	MaxDiskSize = 64 << 40

	maxChecksumSize = 128
)

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// MaxOVAXMLSize bounds ova.xml; 0 means DefaultMaxOVAXMLSize.
	MaxOVAXMLSize int64
	// IgnoreChecksums skips checksum verification (XAPI's import force=true).
	// Checksum entries must still be present.
	IgnoreChecksums bool
	// WithoutOVAXML reads an archive of disk chunks only, with no ova.xml
	// entry, as XAPI's /export_raw_vdi?format=tar produces (prefix "vdi").
	WithoutOVAXML bool
}

// Reader reads an XVA archive (raw tar, gzip or zstd) the way XAPI imports it.
type Reader struct {
	src      *sourceReader
	closer   func()
	tr       *tar.Reader
	opts     ReaderOptions
	comp     Compression
	ovaXML   []byte
	pending  *tar.Header // peeked header, not yet consumed
	eof      bool        // tar end reached
	firstLen int64       // length of the archive's first chunk, -1 before it (global, as in XAPI)
	disk     *DiskReader
	buf      []byte
	err      error
}

// sourceReader remembers the underlying reader's errors, to tell I/O errors
// from decoding errors.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}

// NewReader sniffs the compression of r (zstd magic 28 b5 2f fd, gzip magic
// 1f 8b, otherwise raw tar), then reads the first entry, which must be
// ova.xml (unless opts.WithoutOVAXML). Call Close to release the decompressor.
func NewReader(r io.Reader, opts ReaderOptions) (*Reader, error) {
	if opts.MaxOVAXMLSize <= 0 {
		opts.MaxOVAXMLSize = DefaultMaxOVAXMLSize
	}
	xr := &Reader{src: &sourceReader{r: r}, opts: opts, firstLen: -1, closer: func() {}}
	br := bufio.NewReaderSize(xr.src, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && len(magic) < 2 {
		if xr.src.err != nil {
			return nil, fmt.Errorf("xva: reading: %w", xr.src.err)
		}
		return nil, formatErr(ErrTruncated, "", "stream of %d bytes is too short for an XVA", len(magic))
	}
	var tarStream io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		xr.comp = Zstd
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			return nil, xr.decodeErr(err, "")
		}
		xr.closer = zr.Close
		tarStream = zr
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		xr.comp = Gzip
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, xr.decodeErr(err, "")
		}
		xr.closer = func() { _ = zr.Close() }
		tarStream = zr
	}
	xr.tr = tar.NewReader(tarStream)
	if opts.WithoutOVAXML {
		return xr, nil
	}
	hdr, err := xr.peek()
	if err != nil {
		xr.Close()
		return nil, err
	}
	if hdr == nil {
		xr.Close()
		return nil, formatErr(ErrUnexpectedEntry, "", "empty archive: the first entry must be %s", OVAXMLName)
	}
	if hdr.Name != OVAXMLName {
		xr.Close()
		return nil, formatErr(ErrUnexpectedEntry, hdr.Name, "first entry must be %s", OVAXMLName)
	}
	if hdr.Size > opts.MaxOVAXMLSize {
		xr.Close()
		return nil, formatErr(ErrTooLarge, hdr.Name, "%d bytes exceed the limit of %d", hdr.Size, opts.MaxOVAXMLSize)
	}
	xr.pending = nil
	var ova bytes.Buffer
	if _, err := io.CopyN(&ova, xr.tr, hdr.Size); err != nil {
		xr.Close()
		return nil, xr.decodeErr(err, hdr.Name)
	}
	xr.ovaXML = ova.Bytes()
	return xr, nil
}

// OVAXML returns the content of the ova.xml entry (nil WithoutOVAXML).
func (r *Reader) OVAXML() []byte { return r.ovaXML }

// Compression returns the compression detected on the stream.
func (r *Reader) Compression() Compression { return r.comp }

// Close releases the decompressor. It does not close the underlying reader.
func (r *Reader) Close() error {
	r.closer()
	r.closer = func() {}
	return nil
}

// peek returns the next tar header without consuming it; nil at the end.
func (r *Reader) peek() (*tar.Header, error) {
	if r.pending != nil || r.eof {
		return r.pending, nil
	}
	hdr, err := r.tr.Next()
	if errors.Is(err, io.EOF) {
		r.eof = true
		return nil, nil
	}
	if err != nil {
		return nil, r.decodeErr(err, "")
	}
	if hdr.Size < 0 {
		return nil, formatErr(ErrCorrupt, hdr.Name, "negative entry size")
	}
	r.pending = hdr
	return hdr, nil
}

// decodeErr classifies an error of the tar/decompression chain.
func (r *Reader) decodeErr(err error, entry string) error {
	if r.src.err != nil {
		return fmt.Errorf("xva: reading: %w", r.src.err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &FormatError{Kind: ErrTruncated, Entry: entry, Detail: "archive ends early", Err: err}
	}
	return &FormatError{Kind: ErrCorrupt, Entry: entry, Detail: "undecodable data", Err: err}
}

// NextDisk returns a reader for the next disk in the archive; io.EOF at the
// end of the archive. Unread chunks of the previous disk are read (and
// verified) first.
func (r *Reader) NextDisk() (*DiskReader, error) {
	if r.err != nil {
		return nil, r.err
	}
	d, err := r.nextDisk()
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return d, err
}

func (r *Reader) nextDisk() (*DiskReader, error) {
	if d := r.disk; d != nil {
		for {
			if _, _, err := d.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, err
			}
		}
	}
	hdr, err := r.peek()
	if err != nil {
		return nil, err
	}
	if hdr == nil {
		return nil, io.EOF
	}
	ref, _, ok := splitChunkName(hdr.Name)
	if !ok {
		return nil, formatErr(ErrUnexpectedEntry, hdr.Name, "expected a disk chunk named Ref:N/%%08d")
	}
	if r.disk != nil && ref <= r.disk.Ref {
		return nil, formatErr(ErrOrder, hdr.Name, "disk %s follows disk %s: disks must come in increasing order of their ref", ref, r.disk.Ref)
	}
	r.disk = &DiskReader{Ref: ref, r: r, size: -1, last: "-1"}
	return r.disk, nil
}

// splitChunkName splits "Ref:5/00000012" into "Ref:5" and "00000012".
func splitChunkName(name string) (ref, suffix string, ok bool) {
	i := strings.LastIndexByte(name, '/')
	if i <= 0 || i == len(name)-1 {
		return "", "", false
	}
	return name[:i], name[i+1:], true
}

// DiskReader yields the writes of one disk, following XAPI's import
// algorithm (stream_vdi.ml recv_all_vdi): chunk suffixes must strictly
// increase as strings, each skipped chunk number counts as the length of the
// archive's first chunk, empty (keep-alive) chunks move nothing, and every
// chunk is followed by a .xxhash (or legacy .checksum) entry that must match.
type DiskReader struct {
	// Ref is the disk's prefix, the VDI id in ova.xml ("Ref:12").
	Ref string

	r      *Reader
	size   int64  // -1: unknown
	offset int64  // next offset, after the last chunk read
	last   string // last suffix
	done   bool
	end    int64 // highest offset written
}

// SetSize sets the disk's virtual size (from its VDI record in ova.xml). With
// a size, reading stops once the offset reaches it, as in XAPI, a chunk that
// would end past it is an error, and Raw pads the disk to it. Without one,
// the disk ends at the next entry of another disk or at the end of the
// archive. Call it before the first Next or Raw.
func (d *DiskReader) SetSize(size int64) { d.size = size }

// Next returns the next write: data to put at offset of the disk. Offsets
// increase; the gaps between writes are zero. data is valid until the next
// call. io.EOF ends the disk.
func (d *DiskReader) Next() (offset int64, data []byte, err error) {
	for {
		if d.done {
			return 0, nil, io.EOF
		}
		if d.r.err != nil {
			return 0, nil, d.r.err
		}
		off, data, err := d.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				d.r.err = err
			} else {
				d.done = true
			}
			return 0, nil, err
		}
		if len(data) > 0 { // keep-alive chunks carry nothing
			return off, data, nil
		}
	}
}

func (d *DiskReader) next() (int64, []byte, error) {
	r := d.r
	if d.size >= 0 && d.offset >= d.size {
		return 0, nil, io.EOF
	}
	hdr, err := r.peek()
	if err != nil {
		return 0, nil, err
	}
	if hdr == nil {
		if d.size >= 0 {
			return 0, nil, formatErr(ErrTruncated, "", "archive ends at offset %d of disk %s, whose size is %d", d.offset, d.Ref, d.size)
		}
		return 0, nil, io.EOF
	}
	ref, suffix, ok := splitChunkName(hdr.Name)
	if !ok || ref != d.Ref {
		if d.size < 0 && ok {
			return 0, nil, io.EOF // next disk
		}
		return 0, nil, formatErr(ErrUnexpectedEntry, hdr.Name, "expected a chunk of %s", d.Ref)
	}
	n, err := strconv.ParseInt(suffix, 10, 64)
	if err != nil || n < 0 || strings.Contains(suffix, ".") {
		return 0, nil, formatErr(ErrUnexpectedEntry, hdr.Name, "expected a data chunk named %s/%%08d", d.Ref)
	}
	if suffix <= d.last {
		return 0, nil, formatErr(ErrOrder, hdr.Name, "chunk suffix %q does not increase after %q", suffix, d.last)
	}
	if hdr.Size > MaxChunkSize {
		return 0, nil, formatErr(ErrTooLarge, hdr.Name, "chunk of %d bytes exceeds the limit of %d", hdr.Size, MaxChunkSize)
	}
	r.pending = nil
	if r.firstLen < 0 {
		r.firstLen = hdr.Size
	}
	lastN, _ := strconv.ParseInt(d.last, 10, 64)
	skipped := n - lastN - 1
	if r.firstLen > 0 && skipped > MaxDiskSize/r.firstLen {
		return 0, nil, formatErr(ErrTooLarge, hdr.Name, "skips %d chunks, past the %d-byte limit", skipped, int64(MaxDiskSize))
	}
	off := d.offset + skipped*r.firstLen
	end := off + hdr.Size
	if end > MaxDiskSize || (d.size >= 0 && end > d.size) {
		limit := d.size
		if limit < 0 {
			limit = MaxDiskSize
		}
		return 0, nil, formatErr(ErrTooLarge, hdr.Name, "chunk at offset %d (%d bytes) ends past the disk size %d", off, hdr.Size, limit)
	}
	if int64(cap(r.buf)) < hdr.Size {
		r.buf = make([]byte, 0, hdr.Size)
	}
	buf := r.buf[:hdr.Size]
	if _, err := io.ReadFull(r.tr, buf); err != nil {
		return 0, nil, r.decodeErr(err, hdr.Name)
	}
	if err := d.verify(hdr.Name, buf); err != nil {
		return 0, nil, err
	}
	d.last, d.offset = suffix, end
	d.end = max(d.end, end)
	return off, buf, nil
}

// verify reads the checksum entry that must follow chunk name.
func (d *DiskReader) verify(name string, data []byte) error {
	r := d.r
	hdr, err := r.peek()
	if err != nil {
		return err
	}
	if hdr == nil {
		return formatErr(ErrTruncated, name, "archive ends before the chunk's checksum entry")
	}
	var want string
	switch hdr.Name {
	case name + ".xxhash":
		want = fmt.Sprintf("%016X", xxhash.Sum64(data))
	case name + ".checksum":
		s := sha1.Sum(data)
		want = hex.EncodeToString(s[:])
	default:
		return formatErr(ErrUnexpectedEntry, hdr.Name, "expected the checksum entry %s.xxhash or %s.checksum", name, name)
	}
	if hdr.Size > maxChecksumSize {
		return formatErr(ErrTooLarge, hdr.Name, "checksum entry of %d bytes", hdr.Size)
	}
	r.pending = nil
	got := make([]byte, hdr.Size)
	if _, err := io.ReadFull(r.tr, got); err != nil {
		return r.decodeErr(err, hdr.Name)
	}
	if !r.opts.IgnoreChecksums && string(got) != want {
		return formatErr(ErrChecksum, name, "checksum mismatch: %s holds %q, data hashes to %q", hdr.Name, got, want)
	}
	return nil
}

// Raw returns the disk's content as a stream: the writes, zeros in between,
// and zeros up to the size set with SetSize (without a size, the stream ends
// after the last write). Raw consumes the disk's writes.
func (d *DiskReader) Raw() io.Reader { return &rawReader{d: d} }

type rawReader struct {
	d    *DiskReader
	pos  int64
	cur  []byte
	at   int64
	done bool
	err  error
}

func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for r.err == nil {
		if r.cur == nil && !r.done {
			off, data, err := r.d.Next()
			switch {
			case errors.Is(err, io.EOF):
				r.done = true
			case err != nil:
				r.err = err
			default:
				r.cur, r.at = data, off
			}
			continue
		}
		end := r.d.size
		if end < 0 {
			end = r.d.end
		}
		if r.cur == nil && r.pos >= end {
			r.err = io.EOF
			continue
		}
		if r.cur == nil || r.pos < r.at {
			stop := end
			if r.cur != nil {
				stop = r.at
			}
			n := int(min(int64(len(p)), stop-r.pos))
			clear(p[:n])
			r.pos += int64(n)
			return n, nil
		}
		n := copy(p, r.cur[r.pos-r.at:])
		r.pos += int64(n)
		if r.pos >= r.at+int64(len(r.cur)) {
			r.cur = nil
		}
		return n, nil
	}
	return 0, r.err
}
