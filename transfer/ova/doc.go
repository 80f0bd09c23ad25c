// Package ova generates OVA archives: an OVF 1.0 descriptor and one
// streamOptimized VMDK per disk in a tar stream, what XO's VM export "as
// OVA" produces and what VMware, VirtualBox and XO itself import.
//
// # Layout
//
//	<name>.ovf           OVF 1.0 envelope: References (one File per disk,
//	                     with its size), DiskSection (capacity in bytes,
//	                     format ...vmdk.html#streamOptimized), NetworkSection,
//	                     VirtualSystem with AnnotationSection,
//	                     OperatingSystemSection and VirtualHardwareSection
//	                     (CPUs, memory, IDE controllers for up to 4 disks or
//	                     one LSI Logic SCSI controller for up to 15, disks,
//	                     E1000 NICs, vmw:Config firmware=efi when asked)
//	<name>-disk1.vmdk    streamOptimized VMDK (transfer/vmdk), disk 1
//	<name>-disk2.vmdk    ...
//
// The descriptor comes first, as the OVF specification requires for an OVA.
// Entries have ustar headers, or a GNU header with a base-256 size for a
// VMDK of 8 GiB or more (ustar cannot say more; PAX would add an extra
// entry that simple OVA readers mistake for a file). No manifest is written:
// the specification places it right after the descriptor, before the disks
// whose digests it holds, which would need every disk read before the first
// byte is sent.
//
// # Sizes: why and how they are known up front
//
// A tar header carries its entry's size, but a compressed VMDK's size is only
// known once its disk has been compressed, and nothing may hold a whole disk
// in memory or on disk. Two strategies, chosen with Options.Sizing:
//
//   - SizePadded (default; what XO does, made safe): each VMDK is declared as
//     vmdk.MaxSize(Capacity, Allocated), a bound that holds for any data (a
//     grain never takes more than 129 sectors), and the image is padded to
//     exactly that size with an unreferenced empty grain table before its
//     grain directory, which readers skip. One pass over each disk, sizes
//     known before any data is read, but the archive is about as large as
//     the allocated data: compression saves nothing on the wire, so give
//     Disk.Allocated as tightly as the source allows (allocated blocks × block
//     size, from the VHD BAT or NBD block status). XO (xo-vmdk-to-vhd's
//     writeOvaOn) declares the raw size of the VHD's allocated blocks and pads
//     the same way; by its code, that bound is exceeded by incompressible
//     grains (a stored grain with its marker takes 129 sectors, not 128),
//     which the bound here accounts for.
//   - SizeTwoPass: New compresses every disk once into a byte counter (the
//     writer is deterministic for a given content id), Write compresses it
//     again: the archive is as small as compression makes it and its size is
//     still known before the first byte, at the cost of reading and
//     compressing each disk twice. Sources must yield the same data both
//     times (a snapshot, a halted VM); if not, Write fails with ErrChanged
//     rather than emit a corrupt archive. XO keeps this as its fallback when
//     no bound is known (computeVmdkLength).
//
// Either way Archive.Size is exact, for Content-Length, memory stays bounded
// by the VMDK writer's jobs (a few MiB per disk being written), disks are
// written one after the other, each with vmdk.Options.Workers compressing
// goroutines (GOMAXPROCS by default), and nothing touches the file system.
// Other designs were rejected: a temporary file per disk breaks "never on
// disk"; OVF chunking (ovf:chunkSize, files split into fixed-size tar
// entries) would stream without either cost, but XO's own OVA importer does
// not read chunked files and other importers' support is uneven.
package ova
