package nbd

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrProtocol matches every error caused by bytes from the server that
	// break the NBD protocol (bad magic, unknown handle, oversize reply).
	ErrProtocol = errors.New("nbd: protocol violation by the server")
	// ErrTLSRequired reports a server that refuses to go on without TLS.
	ErrTLSRequired = errors.New("nbd: server requires TLS")
	// ErrTLSRefused reports a server that refused NBD_OPT_STARTTLS (plain
	// mode, xapi-nbd's insecure_nbd purpose).
	ErrTLSRefused = errors.New("nbd: server refused STARTTLS")
	// ErrUnknownExport reports an export name the server does not serve.
	ErrUnknownExport = errors.New("nbd: unknown export")
	// ErrNoBlockStatus reports a server without base:allocation block
	// status (xapi-nbd): the allocation of the export is unknown.
	ErrNoBlockStatus = errors.New("nbd: server offers no base:allocation block status")
	// ErrClosed reports use of a closed Client or Reader.
	ErrClosed = errors.New("nbd: client closed")
)

// Errno is an NBD error number, as the server reports it in a reply. The
// values are Linux's errno values.
type Errno uint32

// The error numbers of the NBD protocol.
const (
	EPERM     Errno = 1
	EIO       Errno = 5
	ENOMEM    Errno = 12
	EINVAL    Errno = 22
	ENOSPC    Errno = 28
	EOVERFLOW Errno = 75
	ENOTSUP   Errno = 95
	ESHUTDOWN Errno = 108
)

// String returns the errno's name, e.g. "EINVAL", or "errno N".
func (e Errno) String() string {
	switch e {
	case EPERM:
		return "EPERM"
	case EIO:
		return "EIO"
	case ENOMEM:
		return "ENOMEM"
	case EINVAL:
		return "EINVAL"
	case ENOSPC:
		return "ENOSPC"
	case EOVERFLOW:
		return "EOVERFLOW"
	case ENOTSUP:
		return "ENOTSUP"
	case ESHUTDOWN:
		return "ESHUTDOWN"
	}
	return fmt.Sprintf("errno %d", uint32(e))
}

// transient reports whether a request failing with e may succeed when
// retried on a new connection.
func (e Errno) transient() bool {
	switch e {
	case EPERM, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP:
		return false
	}
	return true
}

// Error is an error reply of the server to a command.
type Error struct {
	// Command is "READ" or "BLOCK_STATUS".
	Command string
	// Errno is the error number the server sent.
	Errno Errno
	// Offset and Length describe the failed command.
	Offset int64
	Length uint32
}

// Error returns e.g. "nbd: READ of 512 bytes at 1000: server error EINVAL".
func (e *Error) Error() string {
	return fmt.Sprintf("nbd: %s of %d bytes at %d: server error %v", e.Command, e.Length, e.Offset, e.Errno)
}

// OptionError is an error reply of the server to a handshake option.
type OptionError struct {
	// Option is the option the client sent (NBD_OPT_*).
	Option uint32
	// Reply is the error reply type (NBD_REP_ERR_*, high bit set).
	Reply uint32
	// Message is the server's explanation, if any (at most 4 KiB kept).
	Message string
}

// Error returns e.g. "option NBD_OPT_GO refused: NBD_REP_ERR_UNSUP: no";
// the handshake error that wraps it says "nbd: handshake with ADDRESS".
func (e *OptionError) Error() string {
	s := fmt.Sprintf("option %s refused: %s", optName(e.Option), repName(e.Reply))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap maps the reply to ErrTLSRequired, ErrTLSRefused or ErrUnknownExport.
func (e *OptionError) Unwrap() error {
	switch {
	case e.Reply == repErrTLSReqd:
		return ErrTLSRequired
	case e.Option == optStartTLS:
		return ErrTLSRefused
	case e.Reply == repErrUnknown:
		return ErrUnknownExport
	}
	return nil
}

func optName(o uint32) string {
	switch o {
	case optExportName:
		return "NBD_OPT_EXPORT_NAME"
	case optStartTLS:
		return "NBD_OPT_STARTTLS"
	case optGo:
		return "NBD_OPT_GO"
	case optStructuredReply:
		return "NBD_OPT_STRUCTURED_REPLY"
	case optSetMetaContext:
		return "NBD_OPT_SET_META_CONTEXT"
	}
	return fmt.Sprintf("%d", o)
}

func repName(r uint32) string {
	switch r {
	case repErrUnsup:
		return "NBD_REP_ERR_UNSUP"
	case repErrPolicy:
		return "NBD_REP_ERR_POLICY"
	case repErrTLSReqd:
		return "NBD_REP_ERR_TLS_REQD"
	case repErrUnknown:
		return "NBD_REP_ERR_UNKNOWN"
	}
	return fmt.Sprintf("reply 0x%x", r)
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}
