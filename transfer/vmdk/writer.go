package vmdk

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// BlockSource yields the allocated data of a disk in blocks of
// Options.BlockSize bytes, in strictly increasing index order. Next returns
// io.EOF after the last block. data may be shorter than the block size (the
// rest is zero) and is only read until the following call to Next. Blocks
// not yielded read as zeros. It has the shape of transfer/vhd's BlockSource,
// so a *vhd.Reader or vhd.ReaderAtSource feeds Write directly (2 MiB blocks).
type BlockSource interface {
	Next() (index int64, data []byte, err error)
}

// Options describe the streamOptimized image that Write generates.
type Options struct {
	// Size is the virtual size in bytes, at most MaxCapacity. It is rounded
	// up to a multiple of SectorSize.
	Size int64
	// BlockSize is the granularity of the BlockSource: a multiple of
	// GrainSize (64 KiB); zero means DefaultBlockSize (2 MiB).
	BlockSize int64
	// Level is the zlib compression level, 1 (fastest) to 9; zero means 1,
	// as XO and VMware's tools use.
	Level int
	// Workers is the number of compressing goroutines; zero means
	// runtime.GOMAXPROCS(0). At most 64 are used.
	Workers int
	// CID is the descriptor's content id; zero means a random one. Two
	// calls with the same options and data produce identical images.
	CID uint32
	// FileName is the extent name recorded in the descriptor; "" means "disk.vmdk".
	FileName string
	// AdapterType is the descriptor's ddb.adapterType ("ide", "lsilogic",
	// "buslogic", "legacyESX"); "" means "ide".
	AdapterType string
	// PadTo, when positive, makes the image exactly PadTo bytes long (for a
	// size announced before the data is compressed, as in a tar header or a
	// Content-Length; see MaxSize): the room left is filled with an
	// unreferenced empty grain table before the grain directory. Write fails
	// with ErrSizeExceeded if the image would not fit.
	PadTo int64
}

// MaxSize returns an upper bound of the size of the image Write produces for
// a disk of size bytes whose source yields at most allocated bytes of blocks
// (counting whole blocks, e.g. allocated blocks × BlockSize; pass size when
// unknown). It is a safe Options.PadTo. The bound counts MaxGrainBytes per
// grain, so it exceeds the raw allocated data by under 1%.
func MaxSize(size, allocated int64) int64 {
	size = (size + SectorSize - 1) / SectorSize * SectorSize
	grains := (size + GrainSize - 1) / GrainSize
	g := min((max(allocated, 0)+GrainSize-1)/GrainSize, grains)
	gts := (grains + GTEntries - 1) / GTEntries
	return fixedBytes(gts) + g*MaxGrainBytes + min(gts, g)*(SectorSize+GTEntries*4)
}

// fixedBytes is everything but the grains and grain tables: the header, the
// descriptor and the room before the first grain, the grain directory with
// its marker, the footer marker, the footer and the end-of-stream marker.
func fixedBytes(gts int64) int64 {
	return overheadSectors*SectorSize + SectorSize + sectors(gts*4)*SectorSize + 3*SectorSize
}

func sectors(n int64) int64 { return (n + SectorSize - 1) / SectorSize }

const (
	jobGrains  = 16 // grains compressed per job (1 MiB of input)
	maxWorkers = 64 // bounds the jobs in flight whatever Options.Workers says
)

type job struct {
	idx  []int64 // grain indices
	in   []byte  // jobGrains × GrainSize input
	out  []byte  // compressed grains, each sector-padded
	ends []int   // end offset in out of each grain
	done chan struct{}
}

// Write streams a streamOptimized VMDK of opts.Size bytes to w: the header
// (GDOffset "at end"), the descriptor, each non-zero grain of src as a
// compressed grain (marker with LBA and size, zlib data, sector padding),
// each grain table after its 32 MiB of grains behind a GT marker, the grain
// directory behind a GD marker, a footer marker with a copy of the header
// carrying the real GDOffset, and the end-of-stream marker. Grains are
// compressed by opts.Workers goroutines and written in order; at most
// 2×Workers+2 jobs of 1 MiB are in flight, and the grain directory (4 bytes
// per 32 MiB of disk) is the only table kept until the end. All-zero grains
// are skipped. The output size depends on the data and is returned at the
// end; see MaxSize and Options.PadTo for a size known up front.
func Write(ctx context.Context, w io.Writer, opts Options, src BlockSource) (int64, error) {
	if opts.Size < 0 || opts.Size > MaxCapacity {
		return 0, fmt.Errorf("vmdk: virtual size %d is outside [0, %d]", opts.Size, int64(MaxCapacity))
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < 0 || bs%GrainSize != 0 || bs > 1<<30 {
		return 0, fmt.Errorf("vmdk: block size %d is not a multiple of %d up to 1 GiB", bs, GrainSize)
	}
	level := opts.Level
	if level == 0 {
		level = 1
	}
	if level < 1 || level > 9 {
		return 0, fmt.Errorf("vmdk: compression level %d is outside [1, 9]", level)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, maxWorkers)
	cid := opts.CID
	if cid == 0 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		cid = binary.LittleEndian.Uint32(b[:]) | 1
	}
	name := cleanName(opts.FileName)
	if name == "" {
		name = "disk.vmdk"
	}
	adapter := cleanName(opts.AdapterType)
	if adapter == "" {
		adapter = "ide"
	}
	capSectors := sectors(opts.Size)
	grains := (capSectors*SectorSize + GrainSize - 1) / GrainSize
	gts := (grains + GTEntries - 1) / GTEntries
	if opts.PadTo%SectorSize != 0 {
		return 0, fmt.Errorf("vmdk: PadTo %d is not a multiple of %d", opts.PadTo, SectorSize)
	}
	if opts.PadTo > 0 && opts.PadTo < fixedBytes(gts) {
		return 0, fmt.Errorf("%w: PadTo %d is below the %d bytes of metadata", ErrSizeExceeded, opts.PadTo, fixedBytes(gts))
	}
	desc := descriptor(cid, capSectors, name, adapter)
	if len(desc) > descriptorSectors*SectorSize {
		return 0, fmt.Errorf("vmdk: descriptor of %d bytes does not fit in %d sectors", len(desc), descriptorSectors)
	}
	cw := &countWriter{w: w}
	sw := &streamWriter{
		w:      cw,
		opts:   opts,
		header: Header{Version: 3, Flags: streamFlags, Capacity: uint64(capSectors), GrainSize: GrainSize / SectorSize, DescriptorOffset: 1, DescriptorSize: descriptorSectors, NumGTEsPerGT: GTEntries, GDOffset: gdAtEnd, OverHead: overheadSectors, CompressAlgorithm: CompressionDeflate},
		gd:     make([]uint32, gts),
		gt:     make([]uint32, GTEntries),
		curGT:  -1,
		sector: make([]byte, SectorSize),
	}
	err := sw.run(ctx, desc, bs, level, workers, src)
	return cw.n, err
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

type streamWriter struct {
	w      *countWriter
	opts   Options
	header Header
	gd     []uint32
	gt     []uint32
	curGT  int64 // index of the grain table being filled, or -1
	dirty  bool  // gt holds entries not written yet
	inTail bool  // the grain directory and what follows are being written
	sector []byte
}

func (s *streamWriter) run(ctx context.Context, desc string, bs int64, level, workers int, src BlockSource) error {
	first, err := s.header.MarshalBinary()
	if err != nil {
		return err
	}
	pre := make([]byte, overheadSectors*SectorSize)
	copy(pre, first)
	copy(pre[SectorSize:], desc)
	if err := s.write(pre); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	free := make(chan *job, 2*workers+2)
	for range cap(free) {
		free <- &job{in: make([]byte, jobGrains*GrainSize), out: make([]byte, 0, jobGrains*MaxGrainBytes), done: make(chan struct{}, 1)}
	}
	jobs := make(chan *job, workers)
	order := make(chan *job, cap(free))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newCompressor(level)
			for j := range jobs {
				c.compress(j)
				j.done <- struct{}{}
			}
		}()
	}
	var prodErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(jobs)
		prodErr = produce(ctx, src, s.opts.Size, bs, free, jobs, order)
	}()

	var werr error
	for j := range order {
		<-j.done
		if werr == nil {
			werr = s.writeJob(j)
			if werr != nil {
				cancel()
			}
		}
		free <- j
	}
	wg.Wait()
	if werr != nil {
		return werr
	}
	if prodErr != nil {
		return prodErr
	}
	return s.finish()
}

// produce reads src, copies its non-zero grains into jobs and hands each
// job both to the workers and, in order, to the writer.
func produce(ctx context.Context, src BlockSource, size, bs int64, free, jobs, order chan *job) error {
	var j *job
	send := func() error {
		if j == nil || len(j.idx) == 0 {
			return nil
		}
		select {
		case order <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
		jobs <- j // workers drain jobs until it is closed
		j = nil
		return nil
	}
	last := int64(-1)
	if src == nil {
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		idx, data, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("vmdk: block source: %w", err)
		}
		if idx <= last {
			return fmt.Errorf("vmdk: block source yielded block %d after block %d", idx, last)
		}
		last = idx
		if int64(len(data)) > bs {
			return fmt.Errorf("vmdk: block source yielded %d bytes for block %d, more than %d", len(data), idx, bs)
		}
		off := idx * bs
		if idx < 0 || off >= size && len(data) > 0 || off+int64(len(data)) > (size+SectorSize-1)/SectorSize*SectorSize {
			return fmt.Errorf("vmdk: block %d (%d bytes) is beyond the virtual size %d", idx, len(data), size)
		}
		for p := 0; p < len(data); p += GrainSize {
			g := data[p:min(p+GrainSize, len(data))]
			if isZero(g) {
				continue
			}
			if j == nil {
				select {
				case j = <-free:
				case <-ctx.Done():
					return ctx.Err()
				}
				j.idx = j.idx[:0]
			}
			k := len(j.idx)
			dst := j.in[k*GrainSize : (k+1)*GrainSize]
			n := copy(dst, g)
			clear(dst[n:])
			j.idx = append(j.idx, (off+int64(p))/GrainSize)
			if len(j.idx) == jobGrains {
				if err := send(); err != nil {
					return err
				}
			}
		}
	}
	return send()
}

type compressor struct {
	zw  *zlib.Writer
	buf sliceWriter
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func newCompressor(level int) *compressor {
	c := &compressor{}
	zw, err := zlib.NewWriterLevel(&c.buf, level)
	if err != nil {
		panic(err) // level was validated by Write
	}
	c.zw = zw
	return c
}

// compress fills j.out with one marker-framed, sector-padded compressed
// grain per input grain.
func (c *compressor) compress(j *job) {
	out := j.out[:0]
	j.ends = j.ends[:0]
	for k, g := range j.idx {
		in := j.in[k*GrainSize : (k+1)*GrainSize]
		start := len(out)
		out = append(out, make([]byte, 12)...)
		c.buf.b = out
		c.zw.Reset(&c.buf)
		_, _ = c.zw.Write(in) // sliceWriter never fails
		_ = c.zw.Close()
		out = c.buf.b
		if len(out)-start-12 > maxStoredZlib {
			out = appendStored(out[:start+12], in)
		}
		binary.LittleEndian.PutUint64(out[start:], uint64(g)*(GrainSize/SectorSize))
		binary.LittleEndian.PutUint32(out[start+8:], uint32(len(out)-start-12))
		if r := (len(out) - start) % SectorSize; r != 0 {
			out = append(out, make([]byte, SectorSize-r)...)
		}
		j.ends = append(j.ends, len(out))
	}
	j.out = out
}

// appendStored appends in as a zlib stream of stored deflate blocks, the
// largest a grain can ever take (maxStoredZlib bytes).
func appendStored(out, in []byte) []byte {
	out = append(out, 0x78, 0x01)
	for p := 0; p < len(in); {
		n := min(len(in)-p, 65535)
		final := byte(0)
		if p+n == len(in) {
			final = 1
		}
		out = append(out, final, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		out = append(out, in[p:p+n]...)
		p += n
	}
	return binary.BigEndian.AppendUint32(out, adler32.Checksum(in))
}

// writeJob writes a job's grains, recording them in the current grain
// table and flushing that table when a grain of the next one comes.
func (s *streamWriter) writeJob(j *job) error {
	from := 0
	for k, g := range j.idx {
		if gt := g / GTEntries; gt != s.curGT {
			if err := s.write(j.out[from:j.startOf(k)]); err != nil {
				return err
			}
			from = j.startOf(k)
			if err := s.flushGT(); err != nil {
				return err
			}
			s.curGT = gt
		}
		pos := s.w.n + int64(j.startOf(k)-from)
		if pos/SectorSize > 0xFFFFFFFF {
			return fmt.Errorf("vmdk: image exceeds 2 TiB, the limit of 32-bit sector offsets")
		}
		s.gt[g%GTEntries] = uint32(pos / SectorSize)
		s.dirty = true
	}
	return s.write(j.out[from:])
}

func (j *job) startOf(k int) int {
	if k == 0 {
		return 0
	}
	return j.ends[k-1]
}

func (s *streamWriter) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if s.opts.PadTo > 0 {
		gts := int64(len(s.gd))
		if s.w.n+int64(len(p))+s.tailBytes(gts) > s.opts.PadTo {
			return fmt.Errorf("%w: more than %d bytes", ErrSizeExceeded, s.opts.PadTo)
		}
	}
	_, err := s.w.Write(p)
	if err != nil {
		return fmt.Errorf("vmdk: writing: %w", err)
	}
	return nil
}

// tailBytes is what still follows the grains and grain tables: the grain
// directory and its marker, the footer marker, the footer and EOS.
func (s *streamWriter) tailBytes(gts int64) int64 {
	if s.inTail {
		return 0
	}
	return SectorSize + sectors(gts*4)*SectorSize + 3*SectorSize
}

// flushGT writes the current grain table, if any grain went into it, behind
// its marker.
func (s *streamWriter) flushGT() error {
	if !s.dirty {
		return nil
	}
	marker(s.sector, GTEntries*4/SectorSize, MarkerGT)
	if err := s.write(s.sector); err != nil {
		return err
	}
	s.gd[s.curGT] = uint32(s.w.n / SectorSize)
	b := make([]byte, GTEntries*4)
	for i, v := range s.gt {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	clear(s.gt)
	s.dirty = false
	return s.write(b)
}

// finish writes the last grain table, the padding, the grain directory, the
// footer and the end-of-stream marker.
func (s *streamWriter) finish() error {
	if err := s.flushGT(); err != nil {
		return err
	}
	gts := int64(len(s.gd))
	if s.opts.PadTo > 0 {
		pad := s.opts.PadTo - s.w.n - s.tailBytes(gts)
		if pad > 0 {
			// An empty grain table that no directory entry references:
			// stream readers skip it like any other table.
			marker(s.sector, uint64(pad/SectorSize-1), MarkerGT)
			if err := s.write(s.sector); err != nil {
				return err
			}
			zero := make([]byte, min(pad-SectorSize, 1<<20))
			for rest := pad - SectorSize; rest > 0; rest -= int64(len(zero)) {
				if err := s.write(zero[:min(rest, int64(len(zero)))]); err != nil {
					return err
				}
			}
		}
	}
	s.inTail = true // the tail is accounted for from here on
	tail := make([]byte, 0, s.tailBytes(gts)+4*SectorSize)
	tail = append(tail, make([]byte, SectorSize)...)
	marker(tail, uint64(sectors(gts*4)), MarkerGD)
	gdOff := s.w.n/SectorSize + 1
	for _, v := range s.gd {
		tail = binary.LittleEndian.AppendUint32(tail, v)
	}
	tail = append(tail, make([]byte, int(sectors(gts*4)*SectorSize-gts*4))...)
	fm := make([]byte, SectorSize)
	marker(fm, 1, MarkerFooter)
	tail = append(tail, fm...)
	footer := s.header
	footer.GDOffset = uint64(gdOff)
	fb, err := footer.MarshalBinary()
	if err != nil {
		return err
	}
	tail = append(tail, fb...)
	tail = append(tail, make([]byte, SectorSize)...) // EOS marker: all zeros
	if err := s.write(tail); err != nil {
		return err
	}
	if s.opts.PadTo > 0 && s.w.n != s.opts.PadTo {
		return fmt.Errorf("%w: wrote %d bytes, announced %d", ErrSizeExceeded, s.w.n, s.opts.PadTo)
	}
	return nil
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
