package xva

import (
	"errors"
	"fmt"
)

// ErrInvalid matches (with errors.Is) every error caused by a malformed,
// truncated or corrupt XVA, as opposed to I/O errors of the underlying
// reader. A REST API turns it into a 4xx status.
var ErrInvalid = errors.New("xva: invalid archive")

// Kinds of invalid input. Every *FormatError wraps one of these and ErrInvalid.
var (
	// ErrUnexpectedEntry reports a tar entry where another was required
	// (ova.xml not first, a chunk of the wrong disk, a missing checksum entry).
	ErrUnexpectedEntry = errors.New("xva: unexpected entry")
	// ErrChecksum reports a chunk whose .xxhash or .checksum entry does not match its data.
	ErrChecksum = errors.New("xva: checksum mismatch")
	// ErrOrder reports chunk suffixes that do not strictly increase.
	ErrOrder = errors.New("xva: chunks out of order")
	// ErrTruncated reports an archive that ends early.
	ErrTruncated = errors.New("xva: truncated")
	// ErrTooLarge reports an entry or disk above the limits (ova.xml size, chunk size, disk size).
	ErrTooLarge = errors.New("xva: too large")
	// ErrCorrupt reports undecodable tar, gzip or zstd data.
	ErrCorrupt = errors.New("xva: corrupt stream")
)

// FormatError describes one defect of an XVA.
type FormatError struct {
	// Kind is one of ErrUnexpectedEntry, ErrChecksum, ErrOrder, ErrTruncated, ErrTooLarge, ErrCorrupt.
	Kind error
	// Entry is the tar entry name concerned, if any.
	Entry string
	// Detail says what was wrong.
	Detail string
	// Err is the underlying decoder error, if any.
	Err error
}

// Error returns "xva: <entry>: <detail>".
func (e *FormatError) Error() string {
	s := "xva: "
	if e.Entry != "" {
		s += e.Entry + ": "
	}
	s += e.Detail
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap lets errors.Is match the kind, ErrInvalid and the decoder error.
func (e *FormatError) Unwrap() []error {
	errs := []error{e.Kind, ErrInvalid}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func formatErr(kind error, entry, format string, args ...any) *FormatError {
	return &FormatError{Kind: kind, Entry: entry, Detail: fmt.Sprintf(format, args...)}
}
