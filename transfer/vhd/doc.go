// Package vhd reads and writes Microsoft Virtual Hard Disk (VHD) images as
// streams, the way XAPI serves them from /export_raw_vdi?format=vhd and
// accepts them on /import_raw_vdi?format=vhd.
//
// # Writing
//
// NewStream generates a dynamic VHD (or a differencing one when
// Options.Parent is set, as for exports with base=) in XAPI's stream layout:
//
//	0        footer copy (512 bytes)
//	512      dynamic header (1024 bytes), table_offset = 2048, 2 MiB blocks
//	1536     zeros (reserved for parent locators; none are written)
//	2048     BAT, one big-endian sector offset per block or 0xFFFFFFFF
//	...      each allocated block in increasing index order:
//	         a 512-byte sector bitmap with every bit set, then 2 MiB of data
//	end      footer (512 bytes)
//
// The caller gives the virtual size, the indices of the allocated blocks and
// a BlockSource for their data, so the exact output size is known before the
// first byte (Stream.Size, for Content-Length) and only one block is held in
// memory. ScanBlocks finds the non-zero blocks of an io.ReaderAt;
// ReaderAtSource and ReaderSource turn random-access or sequential raw data
// into a BlockSource. A *Reader is itself a BlockSource.
//
// Virtual sizes are rounded up to whole sectors. The footer's creator
// application is "tap\0" (XenServer's blktap), which makes qemu size the disk
// from current_size rather than from the CHS geometry, so qemu-img reports
// exactly the virtual size even when it is not CHS-aligned. The geometry is
// still computed with the specification's algorithm.
//
// # Reading
//
// NewReader parses a VHD from a non-seekable stream: footer copy, dynamic
// header, BAT, then blocks in file order, then the trailing footer, which
// must match the copy. Blocks may belong to any indices as long as their file
// offsets do not overlap; Reader.Raw needs them in increasing index order
// (XAPI's and qemu's layouts) and reports ErrOrder otherwise. NewReaderAt
// reads from random-access storage, takes the footer at the end, supports
// blocks in any order and also fixed VHDs. Fixed VHDs cannot be read from a
// stream because their only footer is at the end.
//
// Every defect of the input is a *FormatError that matches ErrInvalid and a
// kind (ErrChecksum, ErrCookie, ErrTruncated, ErrBAT, ErrTooLarge,
// ErrUnsupported, ErrOrder, ErrFooterMismatch) with errors.Is, and whose
// message says what and where ("vhd: footer checksum mismatch: stored ...,
// computed ... (at offset 0)"). Sizes are checked against MaxSize (2040 GiB),
// block sizes above 2 MiB and BATs above 4 Mi entries are refused before
// anything is allocated. I/O errors of the underlying reader are returned
// wrapped, without ErrInvalid.
//
// Sector bitmaps are honoured on read: sectors whose bit is clear read as
// zeros, and Reader.Bitmap exposes the bitmap (for differencing disks, a clear
// bit means "take the parent's sector"). Parent locators are skipped.
package vhd
