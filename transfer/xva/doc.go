// Package xva writes and reads XVA archives, the VM export format of XAPI's
// GET /export and PUT /import (xapi.md §8).
//
// An XVA is a tar stream, optionally gzip- or zstd-compressed as a whole:
//
//	ova.xml                  the XML-RPC <value> describing VM, VBDs, VDIs, SRs, ...
//	Ref:10/00000000          1 MiB chunk 0 of the VDI whose ova.xml id is "Ref:10"
//	Ref:10/00000000.xxhash   uppercase %016X of the XXH64 (seed 0) of that chunk
//	Ref:10/00000007          chunks that are all zero are omitted,
//	Ref:10/00000007.xxhash   except chunk 0 and the last one (maybe shorter)
//	Ref:9/00000000           disks come in lexicographic order of their ref
//	...
//
// # Writing
//
// Write (or NewWriter, WriteDisk, Close) streams an XVA from the ova.xml
// bytes, which the caller encodes, and one io.Reader of raw data per disk; it
// holds one 1 MiB chunk in memory and reports the bytes written. With
// WriterOptions.KeepAlive it emits XAPI's empty keep-alive chunks while long
// runs of zeros are skipped.
//
// # Reading
//
// NewReader sniffs the compression (zstd magic 28 b5 2f fd, gzip 1f 8b, else
// tar), requires ova.xml as the first entry and exposes it (bounded by
// ReaderOptions.MaxOVAXMLSize, 16 MiB by default). NextDisk then yields one
// DiskReader per disk, whose Next returns (offset, data) writes and whose Raw
// returns the disk as a stream with zeros in the holes. The chunk walk is
// XAPI's import algorithm (stream_vdi.ml recv_all_vdi): suffixes must strictly
// increase as strings, each skipped chunk number counts as the length of the
// archive's first chunk (a global, as in XAPI), empty chunks are keep-alives,
// and each chunk's .xxhash or legacy .checksum (SHA-1, lowercase hex) entry
// must match unless ReaderOptions.IgnoreChecksums (XAPI's force=true). Give a
// disk its virtual size from ova.xml with DiskReader.SetSize to stop exactly
// where XAPI stops and to pad Raw to the full size.
//
// Every defect of the input is a *FormatError that matches ErrInvalid and a
// kind (ErrUnexpectedEntry, ErrChecksum, ErrOrder, ErrTruncated, ErrTooLarge,
// ErrCorrupt) with errors.Is and names the tar entry concerned. Errors of the
// underlying reader are returned wrapped, without ErrInvalid.
//
// Not supported: export_vsn 0 archives (no inline checksums, trailing
// checksum table).
package xva
