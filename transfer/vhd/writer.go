package vhd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// creatorApplication is "tap\0", the value XenServer's blktap writes. qemu
// (block/vpc.c) sizes such images from current_size instead of the CHS
// geometry, so every virtual size round-trips exactly, CHS-aligned or not.
var creatorApplication = [4]byte{'t', 'a', 'p', 0}

// Options describe the VHD that NewStream writes.
type Options struct {
	// Size is the virtual size in bytes, at most MaxSize. It is rounded up to
	// a multiple of SectorSize (VHD sizes are whole sectors).
	Size int64
	// UniqueID is the footer's unique id; zero means a random one.
	UniqueID UUID
	// Timestamp is the footer's creation time; zero means time.Now().
	Timestamp time.Time
	// Parent, when set, makes a differencing VHD (disk type 4) whose header
	// names this parent, as XAPI's /export_raw_vdi?format=vhd&base= does.
	Parent *Parent
}

// Parent identifies the parent of a differencing VHD.
type Parent struct {
	// UniqueID is the parent VHD's footer unique id.
	UniqueID UUID
	// Timestamp is the parent's modification time (zero leaves the field 0).
	Timestamp time.Time
	// Name is the parent's file name (parent_unicode_name), at most 256 UTF-16 units.
	Name string
}

// BlockSource yields the content of a disk's 2 MiB blocks in strictly
// increasing index order. Next returns io.EOF after the last block. data may
// be shorter than BlockSize (the rest is zero) and is only read until the
// following call to Next.
type BlockSource interface {
	Next() (index int64, data []byte, err error)
}

// Stream is a dynamic or differencing VHD generated on the fly in XAPI's
// stream layout: footer copy at 0, dynamic header at 512, zeros up to 2048,
// BAT at 2048 (rounded up to a sector), then each listed block in increasing
// index order as an all-ones sector bitmap followed by 2 MiB of data, then the
// footer. Read it with Read or WriteTo; it never holds more than one block.
type Stream struct {
	footer Footer
	header Header
	tail   []byte   // the footer
	segs   [][]byte // bytes ready to be read
	blocks []int64
	src    BlockSource
	size   int64

	started, finished bool
	next              int // position in blocks
	have              bool
	srcDone           bool
	pendIdx           int64
	pendData          []byte
	bitmap, pad, zero []byte
	err               error
}

// NewStream prepares a VHD of opts.Size bytes whose allocated blocks are
// blocks (strictly increasing indices below ceil(Size/BlockSize)). src yields
// the data of these blocks in order; a listed block that src skips is written
// as zeros, so the output size announced by Size holds whatever src does. src
// yielding a block that is not listed is an error.
func NewStream(opts Options, blocks []int64, src BlockSource) (*Stream, error) {
	if opts.Size < 0 || opts.Size > MaxSize {
		return nil, fmt.Errorf("vhd: virtual size %d is outside [0, %d]", opts.Size, int64(MaxSize))
	}
	size := (opts.Size + SectorSize - 1) / SectorSize * SectorSize
	nblocks := (size + BlockSize - 1) / BlockSize
	for i, b := range blocks {
		if b < 0 || b >= nblocks {
			return nil, fmt.Errorf("vhd: block %d is outside the disk's %d blocks", b, nblocks)
		}
		if i > 0 && b <= blocks[i-1] {
			return nil, fmt.Errorf("vhd: block list not strictly increasing at %d (after %d)", b, blocks[i-1])
		}
	}
	ts := opts.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	uid := opts.UniqueID
	if uid == (UUID{}) {
		uid = NewUUID()
	}
	s := &Stream{blocks: blocks, src: src}
	s.footer = Footer{
		Features:           2,
		FileFormatVersion:  version1,
		DataOffset:         FooterSize,
		Timestamp:          ts,
		CreatorApplication: creatorApplication,
		CreatorVersion:     0x00010003,
		CreatorHostOS:      [4]byte{'W', 'i', '2', 'k'},
		OriginalSize:       uint64(size),
		CurrentSize:        uint64(size),
		Geometry:           GeometryForSize(size),
		DiskType:           DiskTypeDynamic,
		UniqueID:           uid,
	}
	s.header = Header{
		DataOffset:      noDataOffset,
		TableOffset:     TableOffset,
		HeaderVersion:   version1,
		MaxTableEntries: uint32(nblocks),
		BlockSize:       BlockSize,
	}
	if p := opts.Parent; p != nil {
		s.footer.DiskType = DiskTypeDifferencing
		s.header.ParentUniqueID = p.UniqueID
		s.header.ParentTimestamp = p.Timestamp
		s.header.ParentUnicodeName = p.Name
	}
	footer, err := s.footer.MarshalBinary()
	if err != nil {
		return nil, err
	}
	header, err := s.header.MarshalBinary()
	if err != nil {
		return nil, err
	}
	bat := batSize(nblocks)
	prefix := make([]byte, TableOffset+bat)
	copy(prefix, footer)
	copy(prefix[FooterSize:], header)
	for i := int64(0); i < nblocks; i++ {
		binary.BigEndian.PutUint32(prefix[TableOffset+4*i:], unusedEntry)
	}
	const full = SectorSize + BlockSize // bitmap + data
	dataStart := int64(len(prefix))
	for k, b := range blocks {
		off := dataStart + int64(k)*full
		binary.BigEndian.PutUint32(prefix[TableOffset+4*b:], uint32(off/SectorSize))
	}
	s.tail = footer
	s.segs = [][]byte{prefix}
	s.size = dataStart + int64(len(blocks))*full + FooterSize
	return s, nil
}

// Size returns the exact number of bytes the stream produces, for Content-Length.
func (s *Stream) Size() int64 { return s.size }

// Footer returns the footer written at both ends of the stream.
func (s *Stream) Footer() Footer { return s.footer }

// Header returns the dynamic disk header.
func (s *Stream) Header() Header { return s.header }

// fill queues the next segment; io.EOF when everything was queued.
func (s *Stream) fill() error {
	switch {
	case !s.started:
		s.started = true // the prefix was queued by NewStream
		return nil
	case s.next < len(s.blocks):
		data, err := s.blockData(s.blocks[s.next])
		if err != nil {
			return err
		}
		s.next++
		if s.bitmap == nil {
			s.bitmap = make([]byte, SectorSize)
			for i := range s.bitmap {
				s.bitmap[i] = 0xFF
			}
		}
		s.segs = append(s.segs, s.bitmap, data)
		return nil
	case !s.finished:
		s.finished = true
		// Drain the source so that a block it yields past the list is reported.
		if err := s.pull(); err != nil {
			return err
		}
		if s.have {
			return fmt.Errorf("vhd: block source yielded block %d, which is not in the block list", s.pendIdx)
		}
		s.segs = append(s.segs, s.tail)
		return nil
	}
	return io.EOF
}

// pull makes sure the source's next block is pending, unless it is exhausted.
func (s *Stream) pull() error {
	if s.have || s.srcDone || s.src == nil {
		return nil
	}
	idx, data, err := s.src.Next()
	if errors.Is(err, io.EOF) {
		s.srcDone = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("vhd: block source: %w", err)
	}
	if len(data) > BlockSize {
		return fmt.Errorf("vhd: block source yielded %d bytes for block %d, more than %d", len(data), idx, BlockSize)
	}
	s.have, s.pendIdx, s.pendData = true, idx, data
	return nil
}

func (s *Stream) blockData(idx int64) ([]byte, error) {
	if err := s.pull(); err != nil {
		return nil, err
	}
	if s.have && s.pendIdx < idx {
		return nil, fmt.Errorf("vhd: block source yielded block %d, which is not in the block list or out of order (expected %d)", s.pendIdx, idx)
	}
	if !s.have || s.pendIdx > idx {
		if s.zero == nil {
			s.zero = make([]byte, BlockSize)
		}
		return s.zero, nil
	}
	s.have = false
	if len(s.pendData) == BlockSize {
		return s.pendData, nil
	}
	if s.pad == nil {
		s.pad = make([]byte, BlockSize)
	}
	n := copy(s.pad, s.pendData)
	clear(s.pad[n:])
	return s.pad, nil
}

// Read implements io.Reader.
func (s *Stream) Read(p []byte) (int, error) {
	for {
		if s.err != nil {
			return 0, s.err
		}
		for len(s.segs) > 0 && len(s.segs[0]) == 0 {
			s.segs = s.segs[1:]
		}
		if len(s.segs) > 0 {
			n := copy(p, s.segs[0])
			s.segs[0] = s.segs[0][n:]
			return n, nil
		}
		s.err = s.fill()
	}
}

// WriteTo implements io.WriterTo; it writes the remaining stream to w.
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if s.err != nil {
			if s.err == io.EOF {
				return total, nil
			}
			return total, s.err
		}
		for len(s.segs) > 0 {
			n, err := w.Write(s.segs[0])
			total += int64(n)
			s.segs[0] = s.segs[0][n:]
			if err != nil {
				s.err = err
				return total, err
			}
			if len(s.segs[0]) == 0 {
				s.segs = s.segs[1:]
			}
		}
		s.err = s.fill()
	}
}

// AllBlocks returns the indices of every block of a disk of size bytes, for a
// fully allocated VHD (e.g. from ReaderSource, whose zero blocks are not known
// in advance).
func AllBlocks(size int64) []int64 {
	n := (size + BlockSize - 1) / BlockSize
	b := make([]int64, n)
	for i := range b {
		b[i] = int64(i)
	}
	return b
}

// ScanBlocks reads a raw disk of size bytes and returns the indices of its
// 2 MiB blocks that hold any non-zero byte: the block list for NewStream.
// When r is an *os.File on Linux, holes are found with SEEK_DATA/SEEK_HOLE
// and not read.
func ScanBlocks(ctx context.Context, r io.ReaderAt, size int64) ([]int64, error) {
	var candidates []int64
	if f, ok := r.(*os.File); ok {
		if c, ok := dataBlocks(f, size, BlockSize); ok {
			candidates = c
		}
	}
	if candidates == nil {
		candidates = AllBlocks(size)
	}
	buf := make([]byte, BlockSize)
	var out []int64
	for _, i := range candidates {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		off := i * BlockSize
		n := min(size-off, BlockSize)
		m, err := r.ReadAt(buf[:n], off)
		if int64(m) == n {
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("vhd: scanning block %d: %w", i, err)
		}
		if !isZero(buf[:n]) {
			out = append(out, i)
		}
	}
	return out, nil
}

type readerAtSource struct {
	r      io.ReaderAt
	size   int64
	blocks []int64
	buf    []byte
}

// ReaderAtSource yields the listed blocks of a raw disk of size bytes read
// from r, for NewStream with the same list.
func ReaderAtSource(r io.ReaderAt, size int64, blocks []int64) BlockSource {
	return &readerAtSource{r: r, size: size, blocks: blocks}
}

func (s *readerAtSource) Next() (int64, []byte, error) {
	if len(s.blocks) == 0 {
		return 0, nil, io.EOF
	}
	idx := s.blocks[0]
	s.blocks = s.blocks[1:]
	off := idx * BlockSize
	n := min(s.size-off, BlockSize)
	if n <= 0 {
		return 0, nil, fmt.Errorf("vhd: block %d is beyond the disk size %d", idx, s.size)
	}
	if s.buf == nil {
		s.buf = make([]byte, BlockSize)
	}
	m, err := s.r.ReadAt(s.buf[:n], off)
	if int64(m) == n {
		err = nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("vhd: reading block %d: %w", idx, err)
	}
	return idx, s.buf[:n], nil
}

type readerSource struct {
	r    io.Reader
	size int64
	off  int64
	idx  int64
	buf  []byte
}

// ReaderSource yields the non-zero 2 MiB blocks of a raw disk of size bytes
// read sequentially from r. A stream shorter than size gives
// io.ErrUnexpectedEOF. Since zero blocks are only known once read, pair it
// with AllBlocks(size) (skipped blocks become zero blocks), or use
// ScanBlocks + ReaderAtSource for a sparse VHD.
func ReaderSource(r io.Reader, size int64) BlockSource {
	return &readerSource{r: r, size: size}
}

func (s *readerSource) Next() (int64, []byte, error) {
	if s.buf == nil {
		s.buf = make([]byte, BlockSize)
	}
	for s.off < s.size {
		n := min(s.size-s.off, BlockSize)
		if _, err := io.ReadFull(s.r, s.buf[:n]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, fmt.Errorf("vhd: reading raw data at offset %d: %w", s.off, err)
		}
		idx := s.idx
		s.off += n
		s.idx++
		if !isZero(s.buf[:n]) {
			return idx, s.buf[:n], nil
		}
	}
	return 0, nil, io.EOF
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
