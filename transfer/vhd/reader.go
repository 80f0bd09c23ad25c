package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// ErrFooterMismatch reports a trailing footer that contradicts the footer copy at the start.
var ErrFooterMismatch = errors.New("vhd: footer copy mismatch")

type batEntry struct {
	index  int64
	offset int64
}

// Reader reads the blocks of a VHD, either from a non-seekable stream
// (NewReader) or from random-access storage (NewReaderAt). It implements
// BlockSource, so a Reader can feed NewStream directly.
type Reader struct {
	footer    Footer
	header    Header
	bs        int64 // block size
	bm        int64 // bitmap size
	size      int64 // virtual size
	entries   []batEntry
	pos       int
	buf       []byte
	bitmap    []byte
	fixed     bool
	exhausted bool
	err       error

	// stream mode
	r   io.Reader
	off int64 // bytes consumed from r
	// ReaderAt mode
	ra   io.ReaderAt
	file int64
}

// NewReader parses the footer copy, dynamic header and BAT at the start of a
// dynamic or differencing VHD stream. Blocks are then delivered by Next in
// file order, which for XAPI's and qemu's layouts is increasing index order.
// Parent locators and gaps are skipped. After the last block the trailing
// footer is read (to EOF) and checked against the copy.
//
// Fixed VHDs cannot be recognised at the start of a stream (their only footer
// is at the end); use NewReaderAt for them.
func NewReader(r io.Reader) (*Reader, error) {
	v := &Reader{r: r}
	b := make([]byte, HeaderSize)
	if err := v.readFull(b[:FooterSize]); err != nil {
		return nil, v.eof(err, "footer")
	}
	f, err := ParseFooter(b[:FooterSize], 0)
	if err != nil {
		return nil, err
	}
	if f.DiskType == DiskTypeFixed {
		return nil, formatErr(ErrUnsupported, 0, "a fixed VHD has no footer copy at its start and cannot be streamed")
	}
	if f.DataOffset < FooterSize {
		return nil, formatErr(ErrBAT, 16, "dynamic header offset %d overlaps the footer copy", f.DataOffset)
	}
	if err := v.skipTo(int64(min(f.DataOffset, 1<<62))); err != nil {
		return nil, v.eof(err, "dynamic header")
	}
	if err := v.readFull(b); err != nil {
		return nil, v.eof(err, "dynamic header")
	}
	h, err := ParseHeader(b, int64(f.DataOffset))
	if err != nil {
		return nil, err
	}
	if h.TableOffset < f.DataOffset+HeaderSize {
		return nil, formatErr(ErrBAT, int64(f.DataOffset)+16, "BAT offset %d precedes the end of the dynamic header", h.TableOffset)
	}
	if err := v.init(f, h); err != nil {
		return nil, err
	}
	if err := v.skipTo(int64(min(h.TableOffset, 1<<62))); err != nil {
		return nil, v.eof(err, "BAT")
	}
	var bat bytes.Buffer // grows with the data actually received
	n := batSize(int64(h.MaxTableEntries))
	if m, err := io.CopyN(&bat, r, n); err != nil {
		v.off += m
		return nil, v.eof(err, "BAT")
	}
	v.off += n
	if err := v.parseBAT(bat.Bytes(), v.off, 0); err != nil {
		return nil, err
	}
	sort.Slice(v.entries, func(i, j int) bool { return v.entries[i].offset < v.entries[j].offset })
	for i := 1; i < len(v.entries); i++ {
		a, c := v.entries[i-1], v.entries[i]
		if c.offset < a.offset+v.bm+v.bs {
			return nil, formatErr(ErrBAT, int64(h.TableOffset)+4*c.index, "block %d at offset %d overlaps block %d at offset %d", c.index, c.offset, a.index, a.offset)
		}
	}
	return v, nil
}

// NewReaderAt opens a VHD of size bytes stored in r. It reads the footer at
// the end (the authoritative one), and supports fixed, dynamic and
// differencing disks whose blocks are in any file order. Next delivers
// blocks in increasing index order; for fixed disks it delivers the 2 MiB
// blocks that hold non-zero data.
func NewReaderAt(r io.ReaderAt, size int64) (*Reader, error) {
	v := &Reader{ra: r, file: size}
	if size < FooterSize {
		return nil, formatErr(ErrTruncated, 0, "image is %d bytes, smaller than a footer", size)
	}
	b := make([]byte, HeaderSize)
	if err := v.readAt(b[:FooterSize], size-FooterSize, "footer"); err != nil {
		return nil, err
	}
	f, err := ParseFooter(b[:FooterSize], size-FooterSize)
	if err != nil {
		return nil, err
	}
	if f.DiskType == DiskTypeFixed {
		if int64(f.CurrentSize) > size-FooterSize {
			return nil, formatErr(ErrTruncated, size-FooterSize, "fixed VHD of %d bytes holds only %d data bytes", f.CurrentSize, size-FooterSize)
		}
		v.footer, v.fixed, v.bs, v.size = f, true, BlockSize, int64(f.CurrentSize)
		for i := int64(0); i*BlockSize < v.size; i++ {
			v.entries = append(v.entries, batEntry{index: i, offset: i * BlockSize})
		}
		return v, nil
	}
	end := uint64(size - FooterSize)
	if f.DataOffset < FooterSize || f.DataOffset > end || end-f.DataOffset < HeaderSize {
		return nil, formatErr(ErrBAT, size-FooterSize+16, "dynamic header offset %d is outside the image", f.DataOffset)
	}
	if err := v.readAt(b, int64(f.DataOffset), "dynamic header"); err != nil {
		return nil, err
	}
	h, err := ParseHeader(b, int64(f.DataOffset))
	if err != nil {
		return nil, err
	}
	if err := v.init(f, h); err != nil {
		return nil, err
	}
	n := batSize(int64(h.MaxTableEntries))
	if h.TableOffset > end || end-h.TableOffset < uint64(n) {
		return nil, formatErr(ErrBAT, int64(f.DataOffset)+16, "BAT at offset %d (%d bytes) is outside the image", h.TableOffset, n)
	}
	bat := make([]byte, n)
	if err := v.readAt(bat, int64(h.TableOffset), "BAT"); err != nil {
		return nil, err
	}
	if err := v.parseBAT(bat, int64(FooterSize), int64(end)); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *Reader) init(f Footer, h Header) error {
	v.footer, v.header = f, h
	v.size = int64(f.CurrentSize)
	v.bs = int64(h.BlockSize)
	v.bm = bitmapSize(v.bs)
	need := (v.size + v.bs - 1) / v.bs
	if int64(h.MaxTableEntries) < need {
		return formatErr(ErrBAT, int64(f.DataOffset)+28, "BAT has %d entries but the virtual size %d needs %d blocks of %d bytes", h.MaxTableEntries, v.size, need, v.bs)
	}
	return nil
}

// parseBAT collects the allocated entries of the first blocks covering the
// virtual size. Blocks must lie in [lo, hi) (hi 0: unbounded).
func (v *Reader) parseBAT(bat []byte, lo, hi int64) error {
	need := (v.size + v.bs - 1) / v.bs
	for i := int64(0); i < need; i++ {
		e := binary.BigEndian.Uint32(bat[4*i:])
		if e == unusedEntry {
			continue
		}
		off := int64(e) * SectorSize
		at := int64(v.header.TableOffset) + 4*i
		if off < lo {
			return formatErr(ErrBAT, at, "block %d at offset %d overlaps the metadata before offset %d", i, off, lo)
		}
		if hi > 0 && off+v.bm+v.bs > hi {
			return formatErr(ErrBAT, at, "block %d at offset %d extends past the footer at %d", i, off, hi)
		}
		v.entries = append(v.entries, batEntry{index: i, offset: off})
	}
	return nil
}

// Footer returns the footer (the copy at the start for a stream).
func (v *Reader) Footer() Footer { return v.footer }

// Header returns the dynamic disk header (zero for fixed disks).
func (v *Reader) Header() Header { return v.header }

// Size returns the virtual size in bytes (the footer's current_size).
func (v *Reader) Size() int64 { return v.size }

// BlockSize returns the size of the blocks Next delivers.
func (v *Reader) BlockSize() int64 { return v.bs }

// Allocated returns the number of allocated blocks within the virtual size.
func (v *Reader) Allocated() int { return len(v.entries) }

// Next returns the next allocated block: its index (its data starts at byte
// index*BlockSize() of the virtual disk) and its data, truncated at the
// virtual size. Sectors that the block's bitmap marks absent read as zeros.
// data is valid until the next call. io.EOF follows the last block.
func (v *Reader) Next() (index int64, data []byte, err error) {
	if v.err != nil {
		return 0, nil, v.err
	}
	index, data, err = v.next()
	if err != nil {
		v.err = err
	}
	return index, data, err
}

// Bitmap returns the sector bitmap of the block last returned by Next (nil
// for fixed disks). In a differencing disk a clear bit means "read the parent".
func (v *Reader) Bitmap() []byte { return v.bitmap }

func (v *Reader) next() (int64, []byte, error) {
	for v.pos < len(v.entries) {
		e := v.entries[v.pos]
		v.pos++
		n := min(v.bs, v.size-e.index*v.bs)
		if v.buf == nil {
			v.buf = make([]byte, v.bm+v.bs)
		}
		buf := v.buf[:v.bm+n]
		if v.fixed {
			if err := v.readAt(buf, e.offset, fmt.Sprintf("block %d", e.index)); err != nil {
				return 0, nil, err
			}
			if isZero(buf) {
				continue
			}
			return e.index, buf, nil
		}
		if v.ra != nil {
			if err := v.readAt(buf, e.offset, fmt.Sprintf("block %d", e.index)); err != nil {
				return 0, nil, err
			}
		} else {
			if err := v.skipTo(e.offset); err != nil {
				return 0, nil, v.eof(err, fmt.Sprintf("block %d", e.index))
			}
			if err := v.readFull(buf); err != nil {
				return 0, nil, v.eof(err, fmt.Sprintf("block %d", e.index))
			}
			// Skip the unused tail of a block truncated by the virtual size.
			if err := v.skipTo(e.offset + v.bm + v.bs); err != nil {
				return 0, nil, v.eof(err, fmt.Sprintf("block %d", e.index))
			}
		}
		v.bitmap = buf[:v.bm]
		data := buf[v.bm:]
		applyBitmap(v.bitmap, data)
		return e.index, data, nil
	}
	if v.r != nil && !v.exhausted {
		v.exhausted = true
		if err := v.readTrailer(); err != nil {
			return 0, nil, err
		}
	}
	return 0, nil, io.EOF
}

// applyBitmap zeroes the sectors of data whose bitmap bit (MSB first) is clear.
func applyBitmap(bitmap, data []byte) {
	for i := 0; i*SectorSize < len(data); i += 8 {
		c := bitmap[i/8]
		if c == 0xFF {
			continue
		}
		for bit := 0; bit < 8; bit++ {
			s := (i + bit) * SectorSize
			if s >= len(data) {
				break
			}
			if c&(0x80>>bit) == 0 {
				clear(data[s:min(s+SectorSize, len(data))])
			}
		}
	}
}

// readTrailer reads the stream to EOF and checks that it ends with a footer
// matching the copy at the start.
func (v *Reader) readTrailer() error {
	last := make([]byte, 0, 2*FooterSize)
	chunk := make([]byte, 32<<10)
	var total int64
	for {
		n, err := v.r.Read(chunk)
		total += int64(n)
		last = append(last, chunk[:n]...)
		if len(last) > FooterSize {
			last = append(last[:0], last[len(last)-FooterSize:]...)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("vhd: reading trailing footer: %w", err)
		}
	}
	end := v.off + total - FooterSize
	if len(last) < FooterSize {
		return formatErr(ErrTruncated, v.off+total, "stream ends without the trailing footer")
	}
	f, err := ParseFooter(last, end)
	if err != nil {
		return err
	}
	if f.UniqueID != v.footer.UniqueID || f.CurrentSize != v.footer.CurrentSize || f.DiskType != v.footer.DiskType {
		return &FormatError{Kind: ErrFooterMismatch, Offset: end, Detail: fmt.Sprintf(
			"trailing footer (uid %s, size %d, %s) differs from the copy at offset 0 (uid %s, size %d, %s)",
			f.UniqueID, f.CurrentSize, f.DiskType, v.footer.UniqueID, v.footer.CurrentSize, v.footer.DiskType)}
	}
	return nil
}

func (v *Reader) readFull(b []byte) error {
	n, err := io.ReadFull(v.r, b)
	v.off += int64(n)
	return err
}

// skipTo discards stream bytes up to offset off, which must not be behind.
func (v *Reader) skipTo(off int64) error {
	if off < v.off {
		return formatErr(ErrOrder, v.off, "item at offset %d precedes the current stream position %d", off, v.off)
	}
	n, err := io.CopyN(io.Discard, v.r, off-v.off)
	v.off += n
	return err
}

// eof turns a short read into a typed truncation error.
func (v *Reader) eof(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return formatErr(ErrTruncated, v.off, "stream ends inside the %s", what)
	}
	var fe *FormatError
	if errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf("vhd: reading %s: %w", what, err)
}

func (v *Reader) readAt(b []byte, off int64, what string) error {
	if off < 0 || off+int64(len(b)) > v.file {
		return formatErr(ErrTruncated, off, "%s (%d bytes) extends past the image end %d", what, len(b), v.file)
	}
	n, err := v.ra.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return formatErr(ErrTruncated, off+int64(n), "image ends inside the %s", what)
	}
	return fmt.Errorf("vhd: reading %s at offset %d: %w", what, off, err)
}

// Raw returns the virtual disk as a stream of exactly Size() bytes: block
// data where allocated, zeros elsewhere. For a differencing disk, sectors
// absent from it (present only in the parent) read as zeros. A stream Reader
// must deliver blocks in increasing index order, otherwise Raw fails with
// ErrOrder; a ReaderAt Reader always does. Raw consumes the Reader's blocks.
func (v *Reader) Raw() io.Reader { return &rawReader{v: v} }

type rawReader struct {
	v    *Reader
	pos  int64 // next virtual offset to produce
	cur  []byte
	at   int64 // virtual offset of cur
	done bool
	err  error
}

func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for r.err == nil {
		if r.cur == nil && !r.done {
			idx, data, err := r.v.Next()
			switch {
			case errors.Is(err, io.EOF):
				r.done = true
			case err != nil:
				r.err = err
			case idx*r.v.bs < r.pos:
				r.err = formatErr(ErrOrder, -1, "block %d comes after data at virtual offset %d; a stream must hold blocks in increasing order for a raw read", idx, r.pos)
			default:
				r.cur, r.at = data, idx*r.v.bs
			}
			continue
		}
		if r.pos >= r.v.size {
			r.err = io.EOF
			continue
		}
		if r.cur == nil || r.pos < r.at {
			end := r.v.size
			if r.cur != nil {
				end = r.at
			}
			n := int(min(int64(len(p)), end-r.pos))
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
