package ova

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/xorest/xorest/transfer/vmdk"
)

// ErrInvalid matches every error about a VM description that cannot be
// written as an OVA (no name, a disk without data source, too many disks...).
var ErrInvalid = errors.New("ova: invalid VM description")

// ErrChanged is returned by Archive.Write when a disk's source did not yield
// the data it yielded when the archive's sizes were computed (SizeTwoPass),
// or more than Disk.Allocated bytes of blocks (SizePadded).
var ErrChanged = errors.New("ova: disk data does not match the announced size")

// VM describes the virtual machine an OVA carries. The gateway maps XO/XAPI
// objects into it.
type VM struct {
	// Name is the VM's name (OVF VirtualSystem id and Name); it also names
	// the files in the archive, with characters outside [A-Za-z0-9._-] replaced.
	Name string
	// Description goes to the AnnotationSection when not empty.
	Description string
	// OSID is the CIM operating system type of the OperatingSystemSection
	// (e.g. 36 Linux, 101 Linux 64-bit, 103 Windows 64-bit); 0 means 1 (Other).
	OSID int
	// OSDescription is the OperatingSystemSection's free text, e.g. "Debian 12".
	OSDescription string
	// CPUs is the number of virtual CPUs, at least 1.
	CPUs int
	// Memory is the memory size in bytes, at least 1 MiB; rounded up to MiB.
	Memory int64
	// Firmware is "bios" (or "") or "efi".
	Firmware string
	// Disks are the VM's disks in order; the first is the boot disk. Up to
	// 4 go on two IDE controllers, more (up to 15) on one LSI Logic SCSI
	// controller.
	Disks []Disk
	// NICs are the VM's network interfaces in order (E1000 adapters).
	NICs []NIC
}

// Disk is one virtual disk and the source of its data.
type Disk struct {
	// Name labels the disk in the OVF (rasd:ElementName), e.g. the VDI's name.
	Name string
	// Capacity is the virtual size in bytes (rounded up to a 512-byte sector).
	Capacity int64
	// Open returns a fresh source of the disk's allocated data, in blocks of
	// BlockSize bytes in increasing order. Archive.Write calls it once per
	// disk; New calls it once more per disk with SizeTwoPass. A source that
	// is also an io.Closer is closed after use.
	Open func(ctx context.Context) (vmdk.BlockSource, error)
	// BlockSize is the granularity of Open's source; 0 means 2 MiB.
	BlockSize int64
	// Allocated bounds the bytes covered by the blocks the source yields
	// (allocated blocks × BlockSize); 0 means Capacity. With SizePadded the
	// VMDK is MaxSize(Capacity, Allocated) bytes, so a tight bound makes a
	// small archive.
	Allocated int64
}

// NIC is one network interface.
type NIC struct {
	// Network is the name of the network it connects to (OVF NetworkSection).
	Network string
	// MAC is the interface's MAC address, optional.
	MAC string
}

// Sizing chooses how the size of each VMDK is known before its tar header.
type Sizing int

const (
	// SizePadded declares each VMDK as vmdk.MaxSize(Capacity, Allocated)
	// bytes and pads the compressed image to exactly that size: one pass
	// over each disk, sizes known before any data is read, but the archive
	// is as large as the allocated data (the padding is zeros).
	SizePadded Sizing = iota
	// SizeTwoPass compresses each disk once in New, counting the bytes, then
	// again in Write: the archive is as small as compression makes it and
	// its size is known before the first byte, at the cost of reading and
	// compressing every disk twice. Sources must yield the same data both
	// times (a snapshot or a halted VM).
	SizeTwoPass
)

// Options tune the archive.
type Options struct {
	// Sizing is SizePadded (the default) or SizeTwoPass.
	Sizing Sizing
	// Level is the zlib level of the grains (vmdk.Options.Level).
	Level int
	// Workers is the number of compressing goroutines per disk (vmdk.Options.Workers).
	Workers int
	// ModTime is the tar entries' modification time; zero means now.
	ModTime time.Time
}

type controller int

const (
	ide controller = iota
	scsi
)

// count returns the number of controllers for n disks.
func (c controller) count(n int) int {
	if c == scsi {
		return 1
	}
	return max(1, (n+1)/2)
}

// slot returns the controller index and address of disk i.
func (c controller) slot(i int) (int, int) {
	if c == scsi {
		if i >= 7 {
			i++ // 7 is the controller's own SCSI id
		}
		return 0, i
	}
	return i / 2, i % 2
}

func (c controller) adapter() string {
	if c == scsi {
		return "lsilogic"
	}
	return "ide"
}

// networks returns the distinct network names of the NICs in order.
func (vm *VM) networks() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range vm.NICs {
		if !seen[n.Network] {
			seen[n.Network] = true
			out = append(out, n.Network)
		}
	}
	return out
}

// Archive is an OVA ready to be written: its descriptor and every size are
// known, so Size can set a Content-Length before Write streams the data.
type Archive struct {
	vm      VM
	opts    Options
	ctrl    controller
	base    string
	names   []string // VMDK file names
	sizes   []int64  // VMDK sizes
	cids    []uint32
	ovf     []byte
	total   int64
	modTime time.Time
}

// New checks vm and computes the archive's layout. With SizeTwoPass it reads
// and compresses every disk once to measure it.
func New(ctx context.Context, vm VM, opts Options) (*Archive, error) {
	if err := validate(&vm); err != nil {
		return nil, err
	}
	a := &Archive{vm: vm, opts: opts, ctrl: ide, base: fileBase(vm.Name), modTime: opts.ModTime}
	if len(vm.Disks) > 4 {
		a.ctrl = scsi
	}
	if a.modTime.IsZero() {
		a.modTime = time.Now()
	}
	for i, d := range vm.Disks {
		a.names = append(a.names, fmt.Sprintf("%s-disk%d.vmdk", a.base, i+1))
		var b [4]byte
		_, _ = rand.Read(b[:])
		a.cids = append(a.cids, binary.LittleEndian.Uint32(b[:])|1)
		switch opts.Sizing {
		case SizePadded:
			alloc := d.Allocated
			if alloc <= 0 {
				alloc = d.Capacity
			}
			a.sizes = append(a.sizes, vmdk.MaxSize(d.Capacity, alloc))
		case SizeTwoPass:
			n, err := a.writeDisk(ctx, io.Discard, i, 0)
			if err != nil {
				return nil, err
			}
			a.sizes = append(a.sizes, n)
		default:
			return nil, fmt.Errorf("%w: unknown sizing %d", ErrInvalid, opts.Sizing)
		}
	}
	a.ovf = ovfDescriptor(&a.vm, a.names, a.sizes, a.ctrl)
	a.total = entrySize(int64(len(a.ovf))) + 2*tarBlock
	for _, s := range a.sizes {
		a.total += entrySize(s)
	}
	return a, nil
}

const tarBlock = 512

// maxUSTAR is the largest size a ustar header holds (11 octal digits).
const maxUSTAR = 1<<33 - 1

// entrySize is what a tar entry of n bytes takes: one header block (ustar,
// or GNU with a base-256 size above 8 GiB) and the data padded to a block.
func entrySize(n int64) int64 { return tarBlock + (n+tarBlock-1)/tarBlock*tarBlock }

func validate(vm *VM) error {
	switch {
	case strings.TrimSpace(vm.Name) == "":
		return fmt.Errorf("%w: the VM has no name", ErrInvalid)
	case vm.CPUs < 1:
		return fmt.Errorf("%w: %d CPUs", ErrInvalid, vm.CPUs)
	case vm.Memory < 1<<20:
		return fmt.Errorf("%w: memory %d bytes is below 1 MiB", ErrInvalid, vm.Memory)
	case len(vm.Disks) > 15:
		return fmt.Errorf("%w: %d disks, at most 15", ErrInvalid, len(vm.Disks))
	case vm.Firmware != "" && vm.Firmware != "bios" && vm.Firmware != "efi" && vm.Firmware != "uefi":
		return fmt.Errorf("%w: firmware %q, want bios or efi", ErrInvalid, vm.Firmware)
	}
	for i, d := range vm.Disks {
		switch {
		case d.Capacity <= 0 || d.Capacity > vmdk.MaxCapacity:
			return fmt.Errorf("%w: disk %d capacity %d is outside (0, %d]", ErrInvalid, i+1, d.Capacity, int64(vmdk.MaxCapacity))
		case d.Open == nil:
			return fmt.Errorf("%w: disk %d has no data source", ErrInvalid, i+1)
		case d.Allocated < 0:
			return fmt.Errorf("%w: disk %d allocated %d is negative", ErrInvalid, i+1, d.Allocated)
		}
	}
	for i, n := range vm.NICs {
		if n.Network == "" {
			return fmt.Errorf("%w: NIC %d has no network name", ErrInvalid, i+1)
		}
	}
	return nil
}

// fileBase turns a VM name into a file name stem.
func fileBase(name string) string {
	b := []byte(strings.TrimSpace(name))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	s := strings.TrimLeft(string(b), ".")
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" {
		s = "vm"
	}
	return s
}

// Size returns the exact number of bytes Write produces, for Content-Length.
func (a *Archive) Size() int64 { return a.total }

// OVF returns the OVF descriptor, the archive's first entry.
func (a *Archive) OVF() []byte { return a.ovf }

// Files returns the archive's entry names in order: the descriptor, then one
// VMDK per disk.
func (a *Archive) Files() []string { return append([]string{a.base + ".ovf"}, a.names...) }

// DiskSizes returns the size of each VMDK entry, as declared in the OVF.
func (a *Archive) DiskSizes() []int64 { return append([]int64(nil), a.sizes...) }

// Write streams the archive to w: a ustar header and the OVF descriptor,
// then for each disk a header and its streamOptimized VMDK, generated from
// Disk.Open's source while it is written, then the end-of-archive blocks. It
// returns the bytes written, which equal Size on success.
func (a *Archive) Write(ctx context.Context, w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	tw := tar.NewWriter(cw)
	if err := tw.WriteHeader(a.header(a.base+".ovf", int64(len(a.ovf)))); err != nil {
		return cw.n, fmt.Errorf("ova: writing the descriptor header: %w", err)
	}
	if _, err := tw.Write(a.ovf); err != nil {
		return cw.n, fmt.Errorf("ova: writing the descriptor: %w", err)
	}
	for i := range a.vm.Disks {
		if err := tw.WriteHeader(a.header(a.names[i], a.sizes[i])); err != nil {
			return cw.n, fmt.Errorf("ova: writing the header of %s: %w", a.names[i], err)
		}
		pad := int64(0)
		if a.opts.Sizing == SizePadded {
			pad = a.sizes[i]
		}
		n, err := a.writeDisk(ctx, tw, i, pad)
		if err == nil && n != a.sizes[i] {
			err = fmt.Errorf("%w: %s is %d bytes, announced %d", ErrChanged, a.names[i], n, a.sizes[i])
		}
		if errors.Is(err, tar.ErrWriteTooLong) || errors.Is(err, vmdk.ErrSizeExceeded) {
			err = fmt.Errorf("%w: %s: %w", ErrChanged, a.names[i], err)
		}
		if err != nil {
			return cw.n, err
		}
	}
	if err := tw.Close(); err != nil {
		return cw.n, fmt.Errorf("ova: closing the archive: %w", err)
	}
	return cw.n, nil
}

// header returns the tar header of a regular file: ustar, or GNU (base-256
// size, no extra entries) for files of 8 GiB and more, which ustar cannot
// describe.
func (a *Archive) header(name string, size int64) *tar.Header {
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: a.modTime.Truncate(time.Second), Format: tar.FormatUSTAR}
	if size > maxUSTAR {
		h.Format = tar.FormatGNU
	}
	return h
}

// writeDisk writes disk i's VMDK to w, padded to pad bytes when pad > 0.
func (a *Archive) writeDisk(ctx context.Context, w io.Writer, i int, pad int64) (int64, error) {
	d := a.vm.Disks[i]
	src, err := d.Open(ctx)
	if err != nil {
		return 0, fmt.Errorf("ova: opening disk %d: %w", i+1, err)
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	n, err := vmdk.Write(ctx, w, vmdk.Options{
		Size: d.Capacity, BlockSize: d.BlockSize, Level: a.opts.Level, Workers: a.opts.Workers,
		CID: a.cids[i], FileName: a.names[i], AdapterType: a.ctrl.adapter(), PadTo: pad,
	}, src)
	if err != nil {
		return n, fmt.Errorf("ova: disk %d (%s): %w", i+1, a.names[i], err)
	}
	return n, nil
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
