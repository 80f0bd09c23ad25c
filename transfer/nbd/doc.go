// Package nbd is a read-only client for the Network Block Device protocol,
// made for XAPI's NBD server (xapi-nbd) and also working with nbdkit and
// qemu-nbd. xorest uses it for VDI exports with preferNbd: the disk is
// read over N connections and streamed raw or turned into a VHD by
// transfer/vhd.
//
// # Handshake
//
// Dial runs the fixed newstyle handshake: client flags FIXED_NEWSTYLE, plus
// NO_ZEROES when the server offers it (xapi-nbd does not, so its export
// reply is 134 bytes). With Options.TLS set, NBD_OPT_STARTTLS comes first
// and the rest of the connection is TLS; a server that refuses is an error
// (ErrTLSRefused), never a silent fall back to plain text. The export is
// selected with NBD_OPT_GO when the server supports it (nbdkit), which also
// tells the block size constraints, and otherwise with NBD_OPT_EXPORT_NAME,
// the only option xapi-nbd knows (Options.ExportNameOnly skips the NBD_OPT_GO
// round trip). Connections for reading never negotiate structured replies;
// only AllocatedBlocks does, on a connection of its own.
//
// For XAPI, each record of VDI.get_nbd_info gives one Options: Address is
// address:port, ExportName is exportname, and when cert is set (the
// network's purpose is "nbd", not "insecure_nbd") TLS is
// PinnedTLSConfig(cert, subject), which trusts exactly that certificate.
//
// # Reading
//
// Client.ReadAt and ReadAtContext take any offset and length: xapi-nbd
// refuses READs that are not 512-byte aligned, so the client reads whole
// sectors and copies the requested part. Reads larger than 2 MiB are split.
// All requests of a read, and of concurrent reads, are pipelined on one
// connection; the server may answer in any order, replies are matched by
// handle and their payload lands directly in the caller's buffer. A server
// error is an *Error carrying the NBD error number (EINVAL, EIO, ...).
//
// Reads are idempotent, so a read that fails because the connection broke
// (or with EIO) is retried on a new connection, with a backoff bound to the
// context (Options.Retries, Options.Backoff). NBD cannot cancel a request:
// when the context ends during a read, the connection is closed and the
// next read reconnects. Close sends NBD_CMD_DISC.
//
// # Whole disks
//
// A Reader reads a whole export in 2 MiB blocks (BlockSize, the VHD block
// size) over several connections (XO's nbdConcurrency), possibly to several
// hosts, and delivers them in order: as blocks with Next, which makes it a
// transfer/vhd BlockSource, or as the raw disk with Raw. At most
// Connections×Depth+2 blocks are in memory. A connection that fails for
// good hands its blocks to the others. ReaderOptions.Blocks restricts the
// reading to the blocks known to hold data (for instance from XAPI's
// changed block tracking); the others read as zeros. AllocatedBlocks gets
// such a list from servers with base:allocation block status (nbdkit,
// qemu-nbd); xapi-nbd has none and gives ErrNoBlockStatus.
//
// Everything the server sends is untrusted: sizes and lengths are checked
// before use, option replies are read into a fixed 4 KiB buffer, and READ
// payloads only ever go into buffers the caller sized (see FuzzReplies).
package nbd
