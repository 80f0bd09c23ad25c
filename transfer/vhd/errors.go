package vhd

import (
	"errors"
	"fmt"
)

// ErrInvalid matches (with errors.Is) every error caused by malformed,
// truncated or unsupported VHD input, as opposed to I/O errors of the
// underlying reader. A REST API turns it into a 4xx status.
var ErrInvalid = errors.New("vhd: invalid image")

// Kinds of invalid input. Every *FormatError wraps one of these and ErrInvalid.
var (
	// ErrCookie reports a footer or header whose cookie is wrong.
	ErrCookie = errors.New("vhd: bad cookie")
	// ErrChecksum reports a footer or header whose checksum does not match.
	ErrChecksum = errors.New("vhd: checksum mismatch")
	// ErrUnsupported reports a valid but unsupported feature (disk type, block size, version).
	ErrUnsupported = errors.New("vhd: unsupported")
	// ErrTooLarge reports a size above the supported limits (MaxSize, maxBATEntries, block size).
	ErrTooLarge = errors.New("vhd: too large")
	// ErrBAT reports a block allocation table entry that points outside the image or overlaps another item.
	ErrBAT = errors.New("vhd: bad block allocation table")
	// ErrTruncated reports input that ends before the structure it announced.
	ErrTruncated = errors.New("vhd: truncated")
	// ErrOrder reports blocks that a non-seekable reader cannot deliver in the order asked for.
	ErrOrder = errors.New("vhd: blocks out of order")
)

// FormatError describes one defect of VHD input.
type FormatError struct {
	// Kind is one of ErrCookie, ErrChecksum, ErrUnsupported, ErrTooLarge, ErrBAT, ErrTruncated, ErrOrder.
	Kind error
	// Offset is the byte offset in the image where the defect was found, or -1.
	Offset int64
	// Detail says what was wrong, e.g. "footer checksum mismatch: stored 0x1, computed 0x2".
	Detail string
}

// Error returns "vhd: <detail> (at offset N)".
func (e *FormatError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("vhd: %s (at offset %d)", e.Detail, e.Offset)
	}
	return "vhd: " + e.Detail
}

// Unwrap lets errors.Is match both the kind and ErrInvalid.
func (e *FormatError) Unwrap() []error { return []error{e.Kind, ErrInvalid} }

func formatErr(kind error, off int64, format string, args ...any) error {
	return &FormatError{Kind: kind, Offset: off, Detail: fmt.Sprintf(format, args...)}
}
