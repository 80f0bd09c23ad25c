package cloudinit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"
	"unicode/utf16"
)

// Label is the volume label of the drives Image makes: the one NoCloud
// looks for.
const Label = "cidata"

// MinSize is the smallest image Image makes, in bytes (XO's 10 MiB).
const MinSize = 10 << 20

// MaxContent bounds the total size of the files of one drive, in bytes.
const MaxContent = 64 << 20

// ErrTooLarge is returned for content beyond MaxContent.
var ErrTooLarge = errors.New("cloudinit: config drive content too large")

// ErrInstanceID is returned for an empty or multi-line instance id.
var ErrInstanceID = errors.New("cloudinit: instance id must be one non-empty line")

// Config is the content of a config drive.
type Config struct {
	// InstanceID is meta-data's instance-id (XO uses the VM's uuid). A
	// new id makes cloud-init run its first-boot modules again.
	InstanceID string
	// UserData is the user-data file (a #cloud-config document, a script,
	// ...), written as is.
	UserData string
	// NetworkConfig is the network-config file (network config version 1
	// or 2); empty means no such file.
	NetworkConfig string
	// Time stamps every file and directory; the zero value means
	// 1980-01-01 00:00:00, the FAT epoch.
	Time time.Time
}

// Image returns the FAT12 image of the config drive described by cfg.
func Image(cfg Config) ([]byte, error) {
	if cfg.InstanceID == "" || strings.ContainsAny(cfg.InstanceID, "\r\n") {
		return nil, ErrInstanceID
	}
	meta, err := json.Marshal(map[string]string{"uuid": cfg.InstanceID})
	if err != nil {
		return nil, fmt.Errorf("cloudinit: meta_data.json: %w", err)
	}
	root := &node{dir: true}
	root.add(&node{name: "meta-data", data: []byte("instance-id: " + cfg.InstanceID + "\n")})
	root.add(&node{name: "user-data", data: []byte(cfg.UserData)})
	if cfg.NetworkConfig != "" {
		root.add(&node{name: "network-config", data: []byte(cfg.NetworkConfig)})
	}
	latest := &node{name: "latest", dir: true}
	latest.add(&node{name: "meta_data.json", data: meta})
	latest.add(&node{name: "user_data", data: []byte(cfg.UserData)})
	openstack := &node{name: "openstack", dir: true}
	openstack.add(latest)
	root.add(openstack)
	if content := 2*len(cfg.UserData) + len(cfg.NetworkConfig) + 2*len(cfg.InstanceID); content > MaxContent {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, content, MaxContent)
	}
	stamp := cfg.Time
	if stamp.IsZero() || stamp.Year() < 1980 || stamp.Year() > 2107 {
		stamp = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	serial := crc32.ChecksumIEEE([]byte(cfg.InstanceID))
	return build(root, stamp, serial)
}

// Fixed parts of the layout.
const (
	sectorSize     = 512
	reservedSecs   = 1
	numFATs        = 2
	rootEntries    = 512
	rootSecs       = rootEntries * dirEntrySize / sectorSize
	dirEntrySize   = 32
	maxFAT12       = 4084 // clusters; one more makes a FAT16
	sectorsPerTrk  = 32
	heads          = 64
	mediaFixedDisk = 0xF8
	attrVolumeID   = 0x08
	attrDirectory  = 0x10
	attrArchive    = 0x20
	attrLongName   = 0x0F
	eoc            = 0xFFF // end of a cluster chain
)

// node is a file or directory of the drive.
type node struct {
	name     string
	dir      bool
	data     []byte  // file content
	children []*node // directory entries, in order

	short   [11]byte // 8.3 name, space padded
	exact   bool     // short is name itself: no long-name entries
	cluster uint32   // first cluster, 0 for an empty file
	nclus   uint32   // clusters used
}

// add appends child to the directory n, giving it a short name unique in n.
func (n *node) add(child *node) {
	child.short, child.exact = shortName(child.name, func(s [11]byte) bool {
		for _, c := range n.children {
			if c.short == s {
				return true
			}
		}
		return false
	})
	n.children = append(n.children, child)
}

// entries is the number of directory entries of a child: its long-name
// entries and the short one.
func (n *node) entries() int {
	if n.exact {
		return 1
	}
	return len(longNameEntries(n.name, 0)) + 1
}

// geometry is the layout of one image.
type geometry struct {
	totalSecs  uint32
	secPerClus uint32
	fatSecs    uint32
	clusters   uint32
}

func (g geometry) clusterBytes() uint32 { return g.secPerClus * sectorSize }
func (g geometry) fatStart() uint32     { return reservedSecs }
func (g geometry) rootStart() uint32    { return reservedSecs + numFATs*g.fatSecs }
func (g geometry) dataStart() uint32    { return g.rootStart() + rootSecs }

// clusterOffset is the byte offset of cluster c (c >= 2).
func (g geometry) clusterOffset(c uint32) int64 {
	return int64(g.dataStart()+(c-2)*g.secPerClus) * sectorSize
}

// layout returns a FAT12 geometry of at least totalSecs sectors.
func layout(totalSecs uint32) (geometry, error) {
	totalSecs = (totalSecs + sectorsPerTrk - 1) / sectorsPerTrk * sectorsPerTrk
	for spc := uint32(1); spc <= 128; spc *= 2 {
		g := geometry{totalSecs: totalSecs, secPerClus: spc}
		// The FAT must map every cluster, and its size changes the
		// number of clusters: settle it by iteration.
		for range 4 {
			g.clusters = (totalSecs - reservedSecs - numFATs*g.fatSecs - rootSecs) / spc
			g.fatSecs = ((g.clusters+2)*3/2 + 1 + sectorSize - 1) / sectorSize
		}
		g.clusters = (totalSecs - reservedSecs - numFATs*g.fatSecs - rootSecs) / spc
		if g.clusters <= maxFAT12 {
			return g, nil
		}
	}
	return geometry{}, fmt.Errorf("%w: %d sectors do not fit a FAT12", ErrTooLarge, totalSecs)
}

// build lays the tree out and writes the image.
func build(root *node, stamp time.Time, serial uint32) ([]byte, error) {
	// Size: the content in 64 KiB clusters (the largest) bounds what any
	// geometry needs.
	need := uint32(reservedSecs + rootSecs + 2*32)
	var count func(n *node)
	count = func(n *node) {
		for _, c := range n.children {
			size := len(c.data)
			if c.dir {
				size = (len(c.children) + 2) * 8 * dirEntrySize // generous
				count(c)
			}
			need += uint32((size + 65535) / 65536 * 128)
		}
	}
	count(root)
	g, err := layout(max(need, MinSize/sectorSize))
	if err != nil {
		return nil, err
	}
	next := uint32(2)
	var assign func(n *node)
	assign = func(n *node) {
		for _, c := range n.children {
			size := uint32(len(c.data))
			if c.dir {
				size = 2 * dirEntrySize // "." and ".."
				for _, cc := range c.children {
					size += uint32(cc.entries() * dirEntrySize)
				}
			}
			c.nclus = (size + g.clusterBytes() - 1) / g.clusterBytes()
			if c.nclus > 0 {
				c.cluster = next
				next += c.nclus
			}
			if c.dir {
				assign(c)
			}
		}
	}
	assign(root)
	if next-2 > g.clusters {
		return nil, fmt.Errorf("%w: %d clusters needed, %d available", ErrTooLarge, next-2, g.clusters)
	}

	img := make([]byte, int64(g.totalSecs)*sectorSize)
	writeBootSector(img[:sectorSize], g, serial)
	fat := img[g.fatStart()*sectorSize : (g.fatStart()+g.fatSecs)*sectorSize]
	setFAT12(fat, 0, 0xF00|mediaFixedDisk)
	setFAT12(fat, 1, eoc)
	rootDir := img[g.rootStart()*sectorSize : g.dataStart()*sectorSize]
	label := volumeLabel()
	copy(rootDir, label[:])
	rootDir[11] = attrVolumeID
	putTime(rootDir[22:], stamp)
	var write func(n *node, dir []byte, self, parent uint32)
	write = func(n *node, dir []byte, self, parent uint32) {
		off := 0
		if n != root {
			off += putEntry(dir[off:], dotName("."), attrDirectory, self, 0, stamp)
			off += putEntry(dir[off:], dotName(".."), attrDirectory, parent, 0, stamp)
		} else {
			off = dirEntrySize // after the volume label
		}
		for _, c := range n.children {
			if !c.exact {
				for _, e := range longNameEntries(c.name, checksum(c.short)) {
					off += copy(dir[off:], e[:])
				}
			}
			attr, size := byte(attrArchive), uint32(len(c.data))
			if c.dir {
				attr, size = attrDirectory, 0
			}
			off += putEntry(dir[off:], c.short, attr, c.cluster, size, stamp)
			for i := range c.nclus {
				link := c.cluster + i + 1
				if i == c.nclus-1 {
					link = eoc
				}
				setFAT12(fat, c.cluster+i, link)
			}
			if c.nclus == 0 {
				continue
			}
			start := g.clusterOffset(c.cluster)
			area := img[start : start+int64(c.nclus*g.clusterBytes())]
			if c.dir {
				write(c, area, c.cluster, self) // self is 0 for the root, as ".." wants
			} else {
				copy(area, c.data)
			}
		}
	}
	write(root, rootDir, 0, 0)
	for i := uint32(1); i < numFATs; i++ {
		copy(img[(g.fatStart()+i*g.fatSecs)*sectorSize:], fat)
	}
	return img, nil
}

// writeBootSector writes the boot sector: a jump to an endless loop, the
// BIOS parameter block and the extended boot record of a FAT12 volume.
func writeBootSector(b []byte, g geometry, serial uint32) {
	copy(b, []byte{0xEB, 0x3C, 0x90}) // jmp 0x3E; nop
	copy(b[3:11], "XOREST  ")
	le := binary.LittleEndian
	le.PutUint16(b[11:], sectorSize)
	b[13] = byte(g.secPerClus)
	le.PutUint16(b[14:], reservedSecs)
	b[16] = numFATs
	le.PutUint16(b[17:], rootEntries)
	if g.totalSecs < 1<<16 {
		le.PutUint16(b[19:], uint16(g.totalSecs))
	} else {
		le.PutUint32(b[32:], g.totalSecs)
	}
	b[21] = mediaFixedDisk
	le.PutUint16(b[22:], uint16(g.fatSecs))
	le.PutUint16(b[24:], sectorsPerTrk)
	le.PutUint16(b[26:], heads)
	b[36] = 0x80 // drive number: first hard disk
	b[38] = 0x29 // extended boot signature: serial, label and type follow
	le.PutUint32(b[39:], serial)
	label := volumeLabel()
	copy(b[43:54], label[:])
	copy(b[54:62], "FAT12   ")
	copy(b[62:], []byte{0xEB, 0xFE}) // boot code: loop forever
	b[510], b[511] = 0x55, 0xAA
}

// volumeLabel is Label as an 11-byte, space-padded field.
func volumeLabel() [11]byte {
	var l [11]byte
	copy(l[:], Label+strings.Repeat(" ", 11-len(Label)))
	return l
}

// setFAT12 sets entry n of a FAT12 table: 12 bits, two entries in three
// bytes, little-endian.
func setFAT12(fat []byte, n, v uint32) {
	off := n * 3 / 2
	if n%2 == 0 {
		fat[off] = byte(v)
		fat[off+1] = fat[off+1]&0xF0 | byte(v>>8)&0x0F
	} else {
		fat[off] = fat[off]&0x0F | byte(v<<4)
		fat[off+1] = byte(v >> 4)
	}
}

// putEntry writes a short directory entry and returns its size.
func putEntry(b []byte, name [11]byte, attr byte, cluster, size uint32, stamp time.Time) int {
	copy(b, name[:])
	b[11] = attr
	putTime(b[14:], stamp) // creation
	le := binary.LittleEndian
	le.PutUint16(b[18:], dosDate(stamp)) // last access
	le.PutUint16(b[20:], uint16(cluster>>16))
	putTime(b[22:], stamp) // last write
	le.PutUint16(b[26:], uint16(cluster))
	le.PutUint32(b[28:], size)
	return dirEntrySize
}

// putTime writes a DOS time then date.
func putTime(b []byte, t time.Time) {
	binary.LittleEndian.PutUint16(b, uint16(t.Hour()<<11|t.Minute()<<5|t.Second()/2))
	binary.LittleEndian.PutUint16(b[2:], dosDate(t))
}

// dosDate is t's date in DOS format.
func dosDate(t time.Time) uint16 {
	return uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
}

// dotName is the short name of "." or "..".
func dotName(s string) [11]byte { return pack83(s, "") }

// shortName returns the 8.3 name of long name and whether it is the name
// itself: the name when it is a valid upper-case 8.3 name not yet taken,
// else the basis name with the first numeric tail ("~1", "~2", ...) that
// taken does not report as used.
func shortName(long string, taken func([11]byte) bool) ([11]byte, bool) {
	base, ext := long, ""
	if i := strings.LastIndexByte(long, '.'); i > 0 {
		base, ext = long[:i], long[i+1:]
	}
	b, e := shortPart(base, 8), shortPart(ext, 3)
	if b == base && e == ext && b != "" {
		if n := pack83(b, e); !taken(n) {
			return n, true
		}
	}
	for i := 1; ; i++ {
		tail := fmt.Sprintf("~%d", i)
		n := pack83(b[:min(len(b), 8-len(tail))]+tail, e)
		if !taken(n) {
			return n, false
		}
	}
}

// shortPart is s upper-cased, without spaces and dots, other characters
// invalid in short names replaced by "_", cut to n bytes.
func shortPart(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == ' ' || r == '.':
			continue
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("!#$%&'()-@^_`{}~", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	return out[:min(len(out), n)]
}

// pack83 is base and ext as an 11-byte, space-padded short name.
func pack83(base, ext string) [11]byte {
	var n [11]byte
	copy(n[:], base+strings.Repeat(" ", 8-len(base)))
	copy(n[8:], ext+strings.Repeat(" ", 3-len(ext)))
	return n
}

// checksum is the VFAT checksum of a short name, stored in its long-name
// entries.
func checksum(short [11]byte) byte {
	var sum byte
	for _, c := range short {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// longNameEntries returns the VFAT long-name entries of name in the order
// they are stored (the last part first), each carrying sum.
func longNameEntries(name string, sum byte) [][32]byte {
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	if len(u)%13 != 0 {
		u = append(u, 0)
	}
	for len(u) < n*13 {
		u = append(u, 0xFFFF)
	}
	out := make([][32]byte, n)
	for i := range n {
		var e [32]byte
		e[0] = byte(i + 1)
		if i == n-1 {
			e[0] |= 0x40
		}
		part := u[i*13 : i*13+13]
		for j, c := range part {
			var off int
			switch {
			case j < 5:
				off = 1 + 2*j
			case j < 11:
				off = 14 + 2*(j-5)
			default:
				off = 28 + 2*(j-11)
			}
			binary.LittleEndian.PutUint16(e[off:], c)
		}
		e[11] = attrLongName
		e[13] = sum
		out[n-1-i] = e
	}
	return out
}
