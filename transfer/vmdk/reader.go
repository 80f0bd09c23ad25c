package vmdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"

	"github.com/klauspost/compress/zlib"
)

// maxDescriptor bounds the embedded descriptor read by NewReader.
const maxDescriptor = 1 << 20

// Reader reads a hosted sparse VMDK extent (streamOptimized, or
// monolithicSparse with or without compression) from random-access storage:
// header, footer when the grain directory is at the end, descriptor, grain
// directory, then grain tables and grains on demand. It holds the grain
// directory, one grain table and one grain in memory.
type Reader struct {
	r        io.ReaderAt
	fileSize int64
	header   Header
	desc     string
	gd       []uint32
	grains   int64 // grains in the disk
	gbytes   int64 // bytes per grain
	size     int64 // virtual size in bytes

	next  int64 // next grain to look at
	gtIdx int64 // index of the grain table in gt, or -1
	gt    []uint32
	raw   []byte
	buf   []byte
	zr    io.ReadCloser
	br    bytes.Reader
	err   error
}

// NewReader parses the VMDK image of fileSize bytes in r. For an image whose
// header says the grain directory is at the end (streamOptimized), it reads
// the footer marker, the footer and the end-of-stream marker from the last
// three sectors and takes the footer's grain directory offset. Every table is
// checked to lie inside the image before it is read.
func NewReader(r io.ReaderAt, fileSize int64) (*Reader, error) {
	v := &Reader{r: r, fileSize: fileSize, gtIdx: -1}
	b := make([]byte, SectorSize)
	if err := v.readAt(b, 0, "header"); err != nil {
		return nil, err
	}
	h, err := ParseHeader(b, 0)
	if err != nil {
		return nil, err
	}
	if h.GDOffset == gdAtEnd {
		if h.Flags&FlagMarkers == 0 {
			return nil, formatErr(ErrTable, 0, "grain directory at the end without stream markers (flags %#x)", h.Flags)
		}
		end := fileSize - 3*SectorSize
		if end < SectorSize {
			return nil, formatErr(ErrTruncated, max(end, 0), "no room for the footer in %d bytes", fileSize)
		}
		tail := make([]byte, 3*SectorSize)
		if err := v.readAt(tail, end, "footer"); err != nil {
			return nil, err
		}
		if val, size, typ := parseMarker(tail); size != 0 || typ != MarkerFooter || val != 1 {
			return nil, formatErr(ErrMarker, end, "footer marker: val %d size %d type %d, want 1 0 %d", val, size, typ, MarkerFooter)
		}
		if val, size, typ := parseMarker(tail[2*SectorSize:]); val != 0 || size != 0 || typ != MarkerEOS {
			return nil, formatErr(ErrMarker, end+2*SectorSize, "end-of-stream marker: val %d size %d type %d, want 0 0 %d", val, size, typ, MarkerEOS)
		}
		f, err := ParseHeader(tail[SectorSize:], end+SectorSize)
		if err != nil {
			return nil, err
		}
		if f.Capacity != h.Capacity || f.GrainSize != h.GrainSize || f.NumGTEsPerGT != h.NumGTEsPerGT {
			return nil, formatErr(ErrMarker, end+SectorSize, "footer (capacity %d, grain %d, %d GTEs) differs from header (%d, %d, %d)",
				f.Capacity, f.GrainSize, f.NumGTEsPerGT, h.Capacity, h.GrainSize, h.NumGTEsPerGT)
		}
		if f.GDOffset == gdAtEnd {
			return nil, formatErr(ErrTable, end+SectorSize, "footer has no grain directory offset")
		}
		h.GDOffset = f.GDOffset
	}
	v.header = h
	v.gbytes = int64(h.GrainSize) * SectorSize
	v.size = int64(h.Capacity) * SectorSize
	v.grains = (int64(h.Capacity) + int64(h.GrainSize) - 1) / int64(h.GrainSize)
	if h.DescriptorSize > 0 {
		if h.DescriptorSize > maxDescriptor/SectorSize {
			return nil, formatErr(ErrTooLarge, 0, "descriptor of %d sectors exceeds %d", h.DescriptorSize, maxDescriptor/SectorSize)
		}
		d := make([]byte, h.DescriptorSize*SectorSize)
		if h.DescriptorOffset > uint64(fileSize)/SectorSize {
			return nil, formatErr(ErrTruncated, 0, "descriptor at sector %d is beyond the image's %d bytes", h.DescriptorOffset, fileSize)
		}
		if err := v.readAt(d, int64(h.DescriptorOffset)*SectorSize, "descriptor"); err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(d, 0); i >= 0 {
			d = d[:i]
		}
		v.desc = string(d)
	}
	gts := (v.grains + int64(h.NumGTEsPerGT) - 1) / int64(h.NumGTEsPerGT)
	gdOff := int64(h.GDOffset) * SectorSize
	if h.GDOffset > uint64(fileSize)/SectorSize || gdOff+gts*4 > fileSize {
		return nil, formatErr(ErrTable, 0, "grain directory of %d entries at sector %d is beyond the image's %d bytes", gts, h.GDOffset, fileSize)
	}
	gd := make([]byte, gts*4)
	if err := v.readAt(gd, gdOff, "grain directory"); err != nil {
		return nil, err
	}
	v.gd = make([]uint32, gts)
	for i := range v.gd {
		v.gd[i] = binary.LittleEndian.Uint32(gd[4*i:])
		if e := int64(v.gd[i]); e != 0 && e*SectorSize+int64(h.NumGTEsPerGT)*4 > fileSize {
			return nil, formatErr(ErrTable, gdOff+4*int64(i), "grain directory entry %d points to sector %d, beyond the image", i, e)
		}
	}
	// Grain tables must not overlap, which also bounds the work of Next by
	// the image size.
	used := make([]uint32, 0, len(v.gd))
	for _, e := range v.gd {
		if e != 0 {
			used = append(used, e)
		}
	}
	slices.Sort(used)
	for i := 1; i < len(used); i++ {
		if int64(used[i]-used[i-1])*SectorSize < int64(h.NumGTEsPerGT)*4 {
			return nil, formatErr(ErrTable, gdOff, "grain tables at sectors %d and %d overlap", used[i-1], used[i])
		}
	}
	return v, nil
}

func parseMarker(b []byte) (val uint64, size, typ uint32) {
	return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint32(b[12:])
}

// Header returns the image's header, with the footer's grain directory
// offset when the header had "at end".
func (v *Reader) Header() Header { return v.header }

// Descriptor returns the embedded descriptor text (up to its first NUL).
func (v *Reader) Descriptor() string { return v.desc }

var createTypeRE = regexp.MustCompile(`(?m)^\s*createType\s*=\s*"([^"]*)"`)

// CreateType returns the descriptor's createType, e.g. "streamOptimized", or "".
func (v *Reader) CreateType() string {
	if m := createTypeRE.FindStringSubmatch(v.desc); m != nil {
		return m[1]
	}
	return ""
}

// Size returns the virtual size in bytes.
func (v *Reader) Size() int64 { return v.size }

// GrainBytes returns the grain size in bytes, the block size of Next.
func (v *Reader) GrainBytes() int64 { return v.gbytes }

// Next returns the next allocated grain in increasing index order (index =
// byte offset / GrainBytes), decompressed, and io.EOF after the last one; the
// data is valid until the following call. The last grain is cut at the
// virtual size. A *Reader is therefore a BlockSource with GrainBytes blocks.
func (v *Reader) Next() (int64, []byte, error) {
	if v.err != nil {
		return 0, nil, v.err
	}
	idx, data, err := v.nextGrain()
	if err != nil {
		v.err = err
	}
	return idx, data, err
}

func (v *Reader) nextGrain() (int64, []byte, error) {
	per := int64(v.header.NumGTEsPerGT)
	for ; v.next < v.grains; v.next++ {
		g := v.next
		t := g / per
		if v.gd[t] == 0 {
			v.next = (t+1)*per - 1
			continue
		}
		if t != v.gtIdx {
			if err := v.loadGT(t); err != nil {
				return 0, nil, err
			}
		}
		e := v.gt[g%per]
		if e == 0 || e == 1 && v.header.Flags&FlagZeroGrain != 0 {
			continue
		}
		v.next++
		data, err := v.readGrain(g, int64(e)*SectorSize)
		if err != nil {
			return 0, nil, err
		}
		if end := (g + 1) * v.gbytes; end > v.size {
			data = data[:v.gbytes-(end-v.size)]
		}
		return g, data, nil
	}
	return 0, nil, io.EOF
}

func (v *Reader) loadGT(t int64) error {
	per := int64(v.header.NumGTEsPerGT)
	if v.raw == nil {
		v.raw = make([]byte, per*4)
		v.gt = make([]uint32, per)
	}
	off := int64(v.gd[t]) * SectorSize
	if err := v.readAt(v.raw, off, fmt.Sprintf("grain table %d", t)); err != nil {
		return err
	}
	for i := range v.gt {
		v.gt[i] = binary.LittleEndian.Uint32(v.raw[4*i:])
		if e := int64(v.gt[i]); e > 1 && e*SectorSize >= v.fileSize {
			return formatErr(ErrTable, off+4*int64(i), "grain table %d entry %d points to sector %d, beyond the image", t, i, e)
		}
	}
	v.gtIdx = t
	return nil
}

func (v *Reader) readGrain(g, off int64) ([]byte, error) {
	if v.buf == nil {
		v.buf = make([]byte, v.gbytes+1)
	}
	if v.header.Flags&FlagCompressed == 0 {
		if off+v.gbytes > v.fileSize {
			return nil, formatErr(ErrTruncated, off, "grain %d (%d bytes) runs past the image's end", g, v.gbytes)
		}
		return v.buf[:v.gbytes], v.readAt(v.buf[:v.gbytes], off, fmt.Sprintf("grain %d", g))
	}
	var m [12]byte
	if err := v.readAt(m[:], off, fmt.Sprintf("grain %d marker", g)); err != nil {
		return nil, err
	}
	lba := binary.LittleEndian.Uint64(m[:])
	size := int64(binary.LittleEndian.Uint32(m[8:]))
	if want := uint64(g) * v.header.GrainSize; lba != want {
		return nil, formatErr(ErrMarker, off, "grain %d: marker LBA %d, want %d", g, lba, want)
	}
	if size == 0 || size > 2*v.gbytes+1024 || off+12+size > v.fileSize {
		return nil, formatErr(ErrMarker, off, "grain %d: compressed size %d is empty, too large or runs past the image's end", g, size)
	}
	cdata := make([]byte, size)
	if err := v.readAt(cdata, off+12, fmt.Sprintf("grain %d", g)); err != nil {
		return nil, err
	}
	v.br.Reset(cdata)
	var err error
	if v.zr == nil {
		v.zr, err = zlib.NewReader(&v.br)
	} else {
		err = v.zr.(zlib.Resetter).Reset(&v.br, nil)
	}
	if err != nil {
		return nil, formatErr(ErrCompressed, off+12, "grain %d: %v", g, err)
	}
	n, err := io.ReadFull(v.zr, v.buf)
	switch {
	case n > int(v.gbytes):
		return nil, formatErr(ErrCompressed, off+12, "grain %d inflates to more than %d bytes", g, v.gbytes)
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return nil, formatErr(ErrCompressed, off+12, "grain %d: %v", g, err)
	case n == 0:
		return nil, formatErr(ErrCompressed, off+12, "grain %d inflates to nothing", g)
	}
	clear(v.buf[n:])
	return v.buf[:v.gbytes], nil
}

func (v *Reader) readAt(b []byte, off int64, what string) error {
	if off < 0 || off+int64(len(b)) > v.fileSize {
		return formatErr(ErrTruncated, off, "%s (%d bytes) runs past the image's %d bytes", what, len(b), v.fileSize)
	}
	n, err := v.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if errors.Is(err, io.EOF) || err == nil {
		return formatErr(ErrTruncated, off, "%s: %d of %d bytes", what, n, len(b))
	}
	return fmt.Errorf("vmdk: reading %s at offset %d: %w", what, off, err)
}

// Raw returns the whole virtual disk as a stream, zeros where no grain is
// allocated. It consumes the Reader's Next.
func (v *Reader) Raw() io.Reader { return &rawReader{v: v} }

type rawReader struct {
	v    *Reader
	pos  int64  // bytes delivered
	idx  int64  // pending grain index
	data []byte // pending grain data, not yet delivered
	have bool
	done bool
}

func (r *rawReader) Read(p []byte) (int, error) {
	if r.pos >= r.v.size {
		return 0, io.EOF
	}
	if !r.have && !r.done {
		idx, data, err := r.v.Next()
		switch {
		case errors.Is(err, io.EOF):
			r.done = true
		case err != nil:
			return 0, err
		default:
			r.idx, r.data, r.have = idx, data, true
		}
	}
	limit := r.v.size
	if r.have {
		start := r.idx * r.v.gbytes
		if r.pos >= start {
			n := copy(p, r.data[r.pos-start:])
			r.pos += int64(n)
			if r.pos-start >= int64(len(r.data)) {
				r.have = false
			}
			return n, nil
		}
		limit = start
	}
	n := int(min(int64(len(p)), limit-r.pos))
	clear(p[:n])
	r.pos += int64(n)
	return n, nil
}
