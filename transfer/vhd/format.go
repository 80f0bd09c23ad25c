package vhd

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
	"unicode/utf16"
)

// Sizes and limits of the format.
const (
	// SectorSize is the VHD sector size.
	SectorSize = 512
	// FooterSize is the size of the hard disk footer.
	FooterSize = 512
	// HeaderSize is the size of the dynamic disk header.
	HeaderSize = 1024
	// BlockSize is the block size of every VHD this package writes (2 MiB, as XAPI and qemu use).
	BlockSize = 2 << 20
	// MaxSize is the largest virtual size accepted: 2040 GiB, XAPI's VDI_TOO_LARGE limit and qemu's vpc limit.
	MaxSize = 2040 << 30
	// TableOffset is where the stream layout puts the BAT (after footer copy, header and a reserved sector).
	TableOffset = 2048

	maxBlockSize  = BlockSize        // largest block size the reader accepts
	maxBATEntries = 4 << 20          // 16 MiB of BAT at most
	unusedEntry   = 0xFFFFFFFF       // BAT entry of an unallocated block
	noDataOffset  = ^uint64(0)       // data offset of fixed disks and of the dynamic header
	version1      = 0x00010000       // file format and header version
	maxGeometry   = 65535 * 16 * 255 // largest CHS sector count
)

// DiskType is the footer's disk type.
type DiskType uint32

// Disk types.
const (
	DiskTypeFixed        DiskType = 2
	DiskTypeDynamic      DiskType = 3
	DiskTypeDifferencing DiskType = 4
)

// String returns "fixed", "dynamic", "differencing" or the number.
func (t DiskType) String() string {
	switch t {
	case DiskTypeFixed:
		return "fixed"
	case DiskTypeDynamic:
		return "dynamic"
	case DiskTypeDifferencing:
		return "differencing"
	}
	return fmt.Sprintf("DiskType(%d)", uint32(t))
}

// UUID is a VHD unique id, stored as 16 raw bytes.
type UUID [16]byte

// String formats the UUID as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// ParseUUID parses the textual form produced by String (hyphens optional).
func ParseUUID(s string) (UUID, error) {
	var u UUID
	h := bytes.ReplaceAll([]byte(s), []byte("-"), nil)
	if len(h) != 32 {
		return u, fmt.Errorf("vhd: bad uuid %q", s)
	}
	if _, err := hex.Decode(u[:], h); err != nil {
		return u, fmt.Errorf("vhd: bad uuid %q: %w", s, err)
	}
	return u, nil
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() UUID {
	var u UUID
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// Geometry is the CHS geometry stored in the footer.
type Geometry struct {
	Cylinders       uint16
	Heads           uint8
	SectorsPerTrack uint8
}

// Sectors returns C*H*S.
func (g Geometry) Sectors() int64 {
	return int64(g.Cylinders) * int64(g.Heads) * int64(g.SectorsPerTrack)
}

// GeometryForSize computes the CHS geometry of a disk of size bytes with the
// algorithm of the VHD specification's appendix. The CHS capacity may be
// smaller than size; readers that trust the geometry (Virtual PC, qemu for
// unknown creators) see less, which is why this package's writer declares a
// creator application that qemu sizes from current_size.
func GeometryForSize(size int64) Geometry {
	total := (size + SectorSize - 1) / SectorSize
	if total > maxGeometry {
		total = maxGeometry
	}
	var spt, heads, cth int64
	if total >= 65535*16*63 {
		spt, heads = 255, 16
		cth = total / spt
	} else {
		spt = 17
		cth = total / spt
		heads = (cth + 1023) / 1024
		if heads < 4 {
			heads = 4
		}
		if cth >= heads*1024 || heads > 16 {
			spt, heads = 31, 16
			cth = total / spt
		}
		if cth >= heads*1024 {
			spt, heads = 63, 16
			cth = total / spt
		}
	}
	return Geometry{Cylinders: uint16(cth / heads), Heads: uint8(heads), SectorsPerTrack: uint8(spt)}
}

// epoch is the VHD timestamp origin, 2000-01-01 00:00:00 UTC.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func toVHDTime(t time.Time) uint32 {
	s := t.Unix() - epoch
	if s < 0 {
		return 0
	}
	if s > 0xFFFFFFFF {
		return 0xFFFFFFFF
	}
	return uint32(s)
}

func fromVHDTime(v uint32) time.Time { return time.Unix(epoch+int64(v), 0).UTC() }

// checksum is the one's complement of the byte sum of b, skipping the 4 checksum bytes at skip.
func checksum(b []byte, skip int) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= skip && i < skip+4 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// Footer is the 512-byte hard disk footer.
type Footer struct {
	Features           uint32
	FileFormatVersion  uint32
	DataOffset         uint64 // offset of the dynamic header; all ones for fixed disks
	Timestamp          time.Time
	CreatorApplication [4]byte
	CreatorVersion     uint32
	CreatorHostOS      [4]byte
	OriginalSize       uint64
	CurrentSize        uint64 // the virtual size in bytes
	Geometry           Geometry
	DiskType           DiskType
	Checksum           uint32 // as read; MarshalBinary recomputes it
	UniqueID           UUID
	SavedState         bool
}

const footerChecksumAt = 64

// MarshalBinary encodes the footer and stores its checksum (also in f.Checksum).
func (f *Footer) MarshalBinary() ([]byte, error) {
	b := make([]byte, FooterSize)
	copy(b[0:8], "conectix")
	be := binary.BigEndian
	be.PutUint32(b[8:], f.Features)
	be.PutUint32(b[12:], f.FileFormatVersion)
	be.PutUint64(b[16:], f.DataOffset)
	be.PutUint32(b[24:], toVHDTime(f.Timestamp))
	copy(b[28:32], f.CreatorApplication[:])
	be.PutUint32(b[32:], f.CreatorVersion)
	copy(b[36:40], f.CreatorHostOS[:])
	be.PutUint64(b[40:], f.OriginalSize)
	be.PutUint64(b[48:], f.CurrentSize)
	be.PutUint16(b[56:], f.Geometry.Cylinders)
	b[58] = f.Geometry.Heads
	b[59] = f.Geometry.SectorsPerTrack
	be.PutUint32(b[60:], uint32(f.DiskType))
	copy(b[68:84], f.UniqueID[:])
	if f.SavedState {
		b[84] = 1
	}
	f.Checksum = checksum(b, footerChecksumAt)
	be.PutUint32(b[footerChecksumAt:], f.Checksum)
	return b, nil
}

// ParseFooter decodes and validates a footer: cookie, checksum, disk type and
// size limits. off is the footer's offset in the image, used in errors.
func ParseFooter(b []byte, off int64) (Footer, error) {
	var f Footer
	if len(b) < FooterSize {
		return f, formatErr(ErrTruncated, off, "footer is %d bytes, want %d", len(b), FooterSize)
	}
	b = b[:FooterSize]
	if string(b[0:8]) != "conectix" {
		return f, formatErr(ErrCookie, off, "footer cookie is %q, want \"conectix\"", b[0:8])
	}
	be := binary.BigEndian
	f.Checksum = be.Uint32(b[footerChecksumAt:])
	if sum := checksum(b, footerChecksumAt); sum != f.Checksum {
		return f, formatErr(ErrChecksum, off, "footer checksum mismatch: stored %#08x, computed %#08x", f.Checksum, sum)
	}
	f.Features = be.Uint32(b[8:])
	f.FileFormatVersion = be.Uint32(b[12:])
	f.DataOffset = be.Uint64(b[16:])
	f.Timestamp = fromVHDTime(be.Uint32(b[24:]))
	copy(f.CreatorApplication[:], b[28:32])
	f.CreatorVersion = be.Uint32(b[32:])
	copy(f.CreatorHostOS[:], b[36:40])
	f.OriginalSize = be.Uint64(b[40:])
	f.CurrentSize = be.Uint64(b[48:])
	f.Geometry = Geometry{Cylinders: be.Uint16(b[56:]), Heads: b[58], SectorsPerTrack: b[59]}
	f.DiskType = DiskType(be.Uint32(b[60:]))
	copy(f.UniqueID[:], b[68:84])
	f.SavedState = b[84] != 0
	if f.FileFormatVersion>>16 != 1 {
		return f, formatErr(ErrUnsupported, off, "file format version %#08x, want 1.x", f.FileFormatVersion)
	}
	switch f.DiskType {
	case DiskTypeFixed, DiskTypeDynamic, DiskTypeDifferencing:
	default:
		return f, formatErr(ErrUnsupported, off, "disk type %d", uint32(f.DiskType))
	}
	if f.CurrentSize > MaxSize {
		return f, formatErr(ErrTooLarge, off, "virtual size %d exceeds the maximum %d", f.CurrentSize, uint64(MaxSize))
	}
	return f, nil
}

// ParentLocator is one of the 8 parent locator entries of the dynamic header.
type ParentLocator struct {
	PlatformCode [4]byte // e.g. "W2ku", "W2ru", "MacX"; zero when unused
	DataSpace    uint32  // sectors (bytes for some writers) reserved for the locator data
	DataLength   uint32  // bytes of locator data
	DataOffset   uint64  // absolute offset of the locator data
}

// Header is the 1024-byte dynamic disk header.
type Header struct {
	DataOffset        uint64 // unused, all ones
	TableOffset       uint64 // absolute offset of the BAT
	HeaderVersion     uint32
	MaxTableEntries   uint32
	BlockSize         uint32
	Checksum          uint32 // as read; MarshalBinary recomputes it
	ParentUniqueID    UUID
	ParentTimestamp   time.Time
	ParentUnicodeName string
	ParentLocators    [8]ParentLocator
}

const headerChecksumAt = 36

// MarshalBinary encodes the header and stores its checksum (also in h.Checksum).
func (h *Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, HeaderSize)
	copy(b[0:8], "cxsparse")
	be := binary.BigEndian
	be.PutUint64(b[8:], h.DataOffset)
	be.PutUint64(b[16:], h.TableOffset)
	be.PutUint32(b[24:], h.HeaderVersion)
	be.PutUint32(b[28:], h.MaxTableEntries)
	be.PutUint32(b[32:], h.BlockSize)
	copy(b[40:56], h.ParentUniqueID[:])
	if !h.ParentTimestamp.IsZero() {
		be.PutUint32(b[56:], toVHDTime(h.ParentTimestamp))
	}
	name := utf16.Encode([]rune(h.ParentUnicodeName))
	if len(name) > 256 {
		return nil, fmt.Errorf("vhd: parent name %q is longer than 256 UTF-16 units", h.ParentUnicodeName)
	}
	for i, u := range name {
		be.PutUint16(b[64+2*i:], u)
	}
	for i, l := range h.ParentLocators {
		p := b[576+24*i:]
		copy(p[0:4], l.PlatformCode[:])
		be.PutUint32(p[4:], l.DataSpace)
		be.PutUint32(p[8:], l.DataLength)
		be.PutUint64(p[16:], l.DataOffset)
	}
	h.Checksum = checksum(b, headerChecksumAt)
	be.PutUint32(b[headerChecksumAt:], h.Checksum)
	return b, nil
}

// ParseHeader decodes and validates a dynamic disk header: cookie, checksum,
// version, block size and BAT size. off is its offset in the image.
func ParseHeader(b []byte, off int64) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, formatErr(ErrTruncated, off, "dynamic header is %d bytes, want %d", len(b), HeaderSize)
	}
	b = b[:HeaderSize]
	if string(b[0:8]) != "cxsparse" {
		return h, formatErr(ErrCookie, off, "dynamic header cookie is %q, want \"cxsparse\"", b[0:8])
	}
	be := binary.BigEndian
	h.Checksum = be.Uint32(b[headerChecksumAt:])
	if sum := checksum(b, headerChecksumAt); sum != h.Checksum {
		return h, formatErr(ErrChecksum, off, "dynamic header checksum mismatch: stored %#08x, computed %#08x", h.Checksum, sum)
	}
	h.DataOffset = be.Uint64(b[8:])
	h.TableOffset = be.Uint64(b[16:])
	h.HeaderVersion = be.Uint32(b[24:])
	h.MaxTableEntries = be.Uint32(b[28:])
	h.BlockSize = be.Uint32(b[32:])
	copy(h.ParentUniqueID[:], b[40:56])
	if t := be.Uint32(b[56:]); t != 0 {
		h.ParentTimestamp = fromVHDTime(t)
	}
	var name []uint16
	for i := 64; i < 576; i += 2 {
		u := be.Uint16(b[i:])
		if u == 0 {
			break
		}
		name = append(name, u)
	}
	h.ParentUnicodeName = string(utf16.Decode(name))
	for i := range h.ParentLocators {
		p := b[576+24*i:]
		l := &h.ParentLocators[i]
		copy(l.PlatformCode[:], p[0:4])
		l.DataSpace = be.Uint32(p[4:])
		l.DataLength = be.Uint32(p[8:])
		l.DataOffset = be.Uint64(p[16:])
	}
	if h.HeaderVersion>>16 != 1 {
		return h, formatErr(ErrUnsupported, off, "dynamic header version %#08x, want 1.x", h.HeaderVersion)
	}
	bs := h.BlockSize
	if bs < SectorSize || bs&(bs-1) != 0 {
		return h, formatErr(ErrUnsupported, off, "block size %d is not a power of two of at least %d", bs, SectorSize)
	}
	if bs > maxBlockSize {
		return h, formatErr(ErrTooLarge, off, "block size %d exceeds the maximum %d", bs, maxBlockSize)
	}
	if h.MaxTableEntries > maxBATEntries {
		return h, formatErr(ErrTooLarge, off, "BAT of %d entries exceeds the maximum %d", h.MaxTableEntries, maxBATEntries)
	}
	return h, nil
}

// bitmapSize returns the size of a block's sector bitmap, rounded up to a sector.
func bitmapSize(blockSize int64) int64 {
	bytes := (blockSize/SectorSize + 7) / 8
	return (bytes + SectorSize - 1) / SectorSize * SectorSize
}

// batSize returns the BAT size in bytes, rounded up to a sector.
func batSize(entries int64) int64 {
	return (entries*4 + SectorSize - 1) / SectorSize * SectorSize
}
