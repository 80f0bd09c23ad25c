package vmdk

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Sizes of the streamOptimized layout this package writes.
const (
	// SectorSize is the VMDK sector size; every offset in the format counts sectors.
	SectorSize = 512
	// GrainSize is the grain size in bytes (128 sectors), the unit of allocation and compression.
	GrainSize = 128 * SectorSize
	// GTEntries is the number of entries of a grain table (numGTEsPerGT);
	// one grain table covers 32 MiB.
	GTEntries = 512
	// DefaultBlockSize is the granularity of a BlockSource when
	// Options.BlockSize is zero: 2 MiB, the VHD block size, so that a VHD
	// reader or a VHD-style source feeds the writer directly.
	DefaultBlockSize = 2 << 20
	// MaxCapacity is the largest virtual size accepted: 64 TiB. The
	// compressed image itself must stay below 2 TiB (32-bit sector offsets).
	MaxCapacity = 64 << 40
	// MaxGrainBytes bounds the bytes one compressed grain occupies in the
	// image: the 12-byte marker, the zlib stream (never larger than a stored
	// deflate stream, 65,552 bytes) and the padding to a sector: 129 sectors.
	MaxGrainBytes = 129 * SectorSize

	magic             = 0x564d444b // "KDMV" little-endian
	gdAtEnd           = ^uint64(0)
	descriptorSectors = 20  // room for the embedded descriptor (qemu's size)
	overheadSectors   = 128 // grains start at 64 KiB, as VMware's tools write
	maxStoredZlib     = 2 + GrainSize + 5*((GrainSize+65534)/65535) + 4
)

// Header flags (SparseExtentHeader.flags).
const (
	// FlagNewlineTest says the newline-detection characters are valid.
	FlagNewlineTest = 1 << 0
	// FlagRedundantGD says a redundant grain directory is present at RGDOffset.
	FlagRedundantGD = 1 << 1
	// FlagZeroGrain says grain table entry 1 means "zero grain".
	FlagZeroGrain = 1 << 2
	// FlagCompressed says grains are compressed (with compressAlgorithm).
	FlagCompressed = 1 << 16
	// FlagMarkers says the image carries stream markers.
	FlagMarkers = 1 << 17

	streamFlags = FlagNewlineTest | FlagCompressed | FlagMarkers
)

// Marker types of a streamOptimized image (a marker whose size field is 0).
const (
	MarkerEOS    = 0 // end of stream
	MarkerGT     = 1 // a grain table follows
	MarkerGD     = 2 // the grain directory follows
	MarkerFooter = 3 // the footer (a copy of the header with the real GDOffset) follows
)

// CompressionDeflate is the compressAlgorithm value for zlib/deflate grains.
const CompressionDeflate = 1

// Header is a sparse extent header (the first sector of the image and, for
// streamOptimized images, the footer near its end). Offsets and sizes count
// sectors.
type Header struct {
	Version           uint32
	Flags             uint32
	Capacity          uint64 // virtual size in sectors
	GrainSize         uint64 // sectors per grain
	DescriptorOffset  uint64
	DescriptorSize    uint64
	NumGTEsPerGT      uint32
	RGDOffset         uint64
	GDOffset          uint64 // 0xFFFFFFFFFFFFFFFF (GD at end) in a stream header
	OverHead          uint64
	UncleanShutdown   bool
	CompressAlgorithm uint16
}

// MarshalBinary encodes the header as one 512-byte sector.
func (h *Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, SectorSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], magic)
	le.PutUint32(b[4:], h.Version)
	le.PutUint32(b[8:], h.Flags)
	le.PutUint64(b[12:], h.Capacity)
	le.PutUint64(b[20:], h.GrainSize)
	le.PutUint64(b[28:], h.DescriptorOffset)
	le.PutUint64(b[36:], h.DescriptorSize)
	le.PutUint32(b[44:], h.NumGTEsPerGT)
	le.PutUint64(b[48:], h.RGDOffset)
	le.PutUint64(b[56:], h.GDOffset)
	le.PutUint64(b[64:], h.OverHead)
	if h.UncleanShutdown {
		b[72] = 1
	}
	b[73], b[74], b[75], b[76] = '\n', ' ', '\r', '\n'
	le.PutUint16(b[77:], h.CompressAlgorithm)
	return b, nil
}

// ParseHeader decodes a sparse extent header from b (at least 512 bytes);
// off is b's position in the image, for error messages. It checks the magic,
// the version (1 to 3), the newline-detection characters when flagged and
// that grain size and table size are powers of two in sane ranges.
func ParseHeader(b []byte, off int64) (Header, error) {
	if len(b) < SectorSize {
		return Header{}, formatErr(ErrTruncated, off, "header: %d bytes, want %d", len(b), SectorSize)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != magic {
		return Header{}, formatErr(ErrMagic, off, "header magic %#08x, want %#08x (\"KDMV\")", m, magic)
	}
	h := Header{
		Version:           le.Uint32(b[4:]),
		Flags:             le.Uint32(b[8:]),
		Capacity:          le.Uint64(b[12:]),
		GrainSize:         le.Uint64(b[20:]),
		DescriptorOffset:  le.Uint64(b[28:]),
		DescriptorSize:    le.Uint64(b[36:]),
		NumGTEsPerGT:      le.Uint32(b[44:]),
		RGDOffset:         le.Uint64(b[48:]),
		GDOffset:          le.Uint64(b[56:]),
		OverHead:          le.Uint64(b[64:]),
		UncleanShutdown:   b[72] != 0,
		CompressAlgorithm: le.Uint16(b[77:]),
	}
	switch {
	case h.Version < 1 || h.Version > 3:
		return h, formatErr(ErrUnsupported, off, "header version %d, want 1 to 3", h.Version)
	case h.Flags&FlagNewlineTest != 0 && (b[73] != '\n' || b[74] != ' ' || b[75] != '\r' || b[76] != '\n'):
		return h, formatErr(ErrMagic, off, "header newline detection characters %q are damaged", b[73:77])
	case h.GrainSize < 8 || h.GrainSize > 2048 || h.GrainSize&(h.GrainSize-1) != 0:
		return h, formatErr(ErrUnsupported, off, "grain size %d sectors, want a power of two from 8 to 2048", h.GrainSize)
	case h.NumGTEsPerGT < 1 || h.NumGTEsPerGT > 1<<16 || h.NumGTEsPerGT&(h.NumGTEsPerGT-1) != 0:
		return h, formatErr(ErrUnsupported, off, "%d entries per grain table, want a power of two up to 65536", h.NumGTEsPerGT)
	case h.Capacity > MaxCapacity/SectorSize:
		return h, formatErr(ErrTooLarge, off, "capacity %d sectors exceeds %d", h.Capacity, uint64(MaxCapacity/SectorSize))
	case h.Flags&FlagCompressed != 0 && h.CompressAlgorithm != CompressionDeflate:
		return h, formatErr(ErrUnsupported, off, "compression algorithm %d, want %d (deflate)", h.CompressAlgorithm, CompressionDeflate)
	}
	return h, nil
}

// marker encodes a metadata marker sector: val, size 0, type.
func marker(b []byte, val uint64, typ uint32) {
	clear(b[:SectorSize])
	binary.LittleEndian.PutUint64(b, val)
	binary.LittleEndian.PutUint32(b[12:], typ)
}

// Geometry is the legacy CHS geometry recorded in the descriptor.
type Geometry struct{ Cylinders, Heads, Sectors int64 }

// GeometryFor returns the CHS geometry qemu and VMware record for a disk of
// capacity sectors: 16 heads for IDE, 255 otherwise, 63 sectors per track,
// cylinders capped at 16383 (IDE) or 65535.
func GeometryFor(capacity int64, adapter string) Geometry {
	g := Geometry{Heads: 255, Sectors: 63}
	maxCyl := int64(65535)
	if adapter == "ide" || adapter == "" {
		g.Heads, maxCyl = 16, 16383
	}
	g.Cylinders = min(capacity/(g.Heads*g.Sectors), maxCyl)
	return g
}

// descriptor returns the embedded descriptor text of a streamOptimized
// extent of capacity sectors named name.
func descriptor(cid uint32, capacity int64, name, adapter string) string {
	g := GeometryFor(capacity, adapter)
	var b strings.Builder
	fmt.Fprintf(&b, "# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n", cid)
	fmt.Fprintf(&b, "# Extent description\nRW %d SPARSE \"%s\"\n\n", capacity, name)
	fmt.Fprintf(&b, "# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\n")
	fmt.Fprintf(&b, "ddb.geometry.cylinders = \"%d\"\nddb.geometry.heads = \"%d\"\nddb.geometry.sectors = \"%d\"\n", g.Cylinders, g.Heads, g.Sectors)
	fmt.Fprintf(&b, "ddb.adapterType = \"%s\"\n", adapter)
	return b.String()
}

// cleanName makes s safe inside the descriptor's quoted extent name.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
