package nbd

import "encoding/binary"

// Wire constants of the NBD protocol (doc/proto.md of NetworkBlockDevice/nbd).
const (
	magicInit      = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt       = 0x49484156454f5054 // "IHAVEOPT"
	magicOldstyle  = 0x00420281861253
	magicOptReply  = 0x0003e889045565a9
	magicRequest   = 0x25609513
	magicSimple    = 0x67446698
	magicStructred = 0x668e33ef

	// handshake flags (server) and client flags
	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	optExportName      = 1
	optAbort           = 2
	optStartTLS        = 5
	optGo              = 7
	optStructuredReply = 8
	optSetMetaContext  = 10

	repAck         = 1
	repInfo        = 3
	repMetaContext = 4

	// repFlagError marks an error reply to an option.
	repFlagError  = 1 << 31
	repErrUnsup   = repFlagError | 1
	repErrPolicy  = repFlagError | 2
	repErrUnknown = repFlagError | 6
	repErrTLSReqd = repFlagError | 5

	infoExport    = 0
	infoBlockSize = 3

	cmdRead        = 0
	cmdDisc        = 2
	cmdBlockStatus = 7

	replyFlagDone    = 1
	replyTypeNone    = 0
	replyTypeStatus  = 5
	replyTypeError   = 1<<15 | 1
	replyTypeErrorAt = 1<<15 | 2
	stateZero        = 1 << 1

	contextAllocation = "base:allocation"

	requestSize = 28
	replySize   = 16

	// maxOptPayload bounds what the client keeps in memory of one option
	// reply (error messages, NBD_REP_INFO); longer payloads are discarded.
	maxOptPayload = 4096
	// maxOptDiscard bounds how many bytes of option replies the client
	// accepts to skip before it calls the server broken.
	maxOptDiscard = 1 << 20
)

// Transmission flags announced by the server with the export.
const (
	// FlagHasFlags is always set by a conforming server.
	FlagHasFlags uint16 = 1 << 0
	// FlagReadOnly says the export is read-only (xapi-nbd always sets it).
	FlagReadOnly uint16 = 1 << 1
	// FlagCanMultiConn says several connections see consistent data.
	FlagCanMultiConn uint16 = 1 << 8
)

// SectorSize is the alignment xapi-nbd requires of READ offsets and lengths.
// Client.ReadAt aligns reads to it internally.
const SectorSize = 512

// BlockSize is the size of the blocks that Reader reads and delivers: the
// VHD block size, and XO's NBD_DEFAULT_BLOCK_SIZE for full-disk reads.
const BlockSize = 2 << 20

// maxRequest is the largest READ the client sends; larger reads are split.
// xapi-nbd and nbdkit both accept it (nbdkit's limit is 32 MiB).
const maxRequest = 2 << 20

func putRequest(b []byte, typ uint16, handle uint64, off uint64, length uint32) {
	be := binary.BigEndian
	be.PutUint32(b[0:], magicRequest)
	be.PutUint16(b[4:], 0)
	be.PutUint16(b[6:], typ)
	be.PutUint64(b[8:], handle)
	be.PutUint64(b[16:], off)
	be.PutUint32(b[24:], length)
}
