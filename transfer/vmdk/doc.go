// Package vmdk writes streamOptimized VMDK images as streams, the disk format
// of an OVA, and reads sparse VMDK extents back (for tests, fuzzing and
// imports).
//
// # Writing
//
// Write generates a streamOptimized image (VMware "Virtual Disk Format 1.1")
// from the virtual size and a BlockSource of the allocated data, in this
// layout (offsets in 512-byte sectors):
//
//	0      header: version 3, flags newline-test|compressed|markers (0x30001),
//	       compressAlgorithm 1 (deflate), grain 128 sectors, 512 GTEs per GT,
//	       gdOffset 0xFFFFFFFFFFFFFFFF ("at end"), overHead 128
//	1      embedded descriptor, createType="streamOptimized" (20 sectors)
//	128    for each non-zero 64 KiB grain in increasing LBA order:
//	       marker {lba, compressed size} + zlib data, padded to a sector;
//	       after the grains of each 32 MiB span that has any, a GT marker
//	       and that grain table (4 sectors)
//	...    [only with Options.PadTo: a GT marker and an unreferenced, empty
//	       grain table filling the room left]
//	       GD marker + grain directory
//	       footer marker + footer (the header with the real gdOffset)
//	end    end-of-stream marker (a zero sector)
//
// Writing grain tables as soon as their span is done (the layout VMware's
// own stream writers use) keeps only the grain directory (4 bytes per 32 MiB)
// until the end, so memory does not grow with the disk. All-zero grains are
// skipped. Grains are compressed by Options.Workers goroutines
// (GOMAXPROCS by default) with klauspost/compress's zlib, in jobs of 16
// grains, and written in order; at most 2×Workers+2 jobs (about 2 MiB each)
// are in flight. A grain that does not compress is written as stored deflate
// blocks, so no grain ever takes more than MaxGrainBytes (129 sectors).
//
// The output size depends on how well the data compresses, so it is known
// only at the end (Write returns it). When a size must be announced first (a
// tar header, a Content-Length), MaxSize gives a bound from the virtual size
// and the allocated bytes, and Options.PadTo makes the image exactly that
// long; alternatively, Write is deterministic for a given Options.CID and
// data, so a first pass into a counter gives the exact size of a second one.
//
// ReaderAtSource and ReaderSource turn raw disks into a BlockSource (holes of
// an *os.File are skipped with SEEK_DATA on Linux); a *vhd.Reader is a
// BlockSource at 2 MiB too, and a *Reader is one at 64 KiB.
//
// # Reading
//
// NewReader opens a hosted sparse extent from an io.ReaderAt: a streamOptimized
// image with its grain directory at the end (taken from the footer, whose
// marker and the end-of-stream marker are checked) or in the header (what
// qemu-img writes), and monolithicSparse images. Reader.Next yields the
// allocated grains in order, decompressed, after checking each marker's LBA;
// Reader.Raw is the whole disk. Every defect of the input is a *FormatError
// matching ErrInvalid and a kind (ErrMagic, ErrUnsupported, ErrTooLarge,
// ErrTruncated, ErrTable, ErrMarker, ErrCompressed) with errors.Is; every
// table is bounds-checked against the image size before it is allocated.
package vmdk
