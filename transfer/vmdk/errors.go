package vmdk

import (
	"errors"
	"fmt"
)

// ErrInvalid matches (with errors.Is) every error caused by malformed,
// truncated or unsupported VMDK input, as opposed to I/O errors of the
// underlying reader. A REST API turns it into a 4xx status.
var ErrInvalid = errors.New("vmdk: invalid image")

// Kinds of invalid input. Every *FormatError wraps one of these and ErrInvalid.
var (
	// ErrMagic reports a header that does not start with "KDMV".
	ErrMagic = errors.New("vmdk: bad magic")
	// ErrUnsupported reports a valid but unsupported feature (version, grain size, compression).
	ErrUnsupported = errors.New("vmdk: unsupported")
	// ErrTooLarge reports a size above the supported limits (MaxCapacity, table sizes).
	ErrTooLarge = errors.New("vmdk: too large")
	// ErrTruncated reports input that ends before the structure it announced.
	ErrTruncated = errors.New("vmdk: truncated")
	// ErrTable reports a grain directory or grain table entry that points outside the image.
	ErrTable = errors.New("vmdk: bad grain table")
	// ErrMarker reports a stream marker that is missing or does not match what it should describe.
	ErrMarker = errors.New("vmdk: bad marker")
	// ErrCompressed reports a compressed grain that does not inflate to exactly one grain.
	ErrCompressed = errors.New("vmdk: bad compressed grain")
)

// FormatError describes one defect of VMDK input.
type FormatError struct {
	// Kind is one of ErrMagic, ErrUnsupported, ErrTooLarge, ErrTruncated, ErrTable, ErrMarker, ErrCompressed.
	Kind error
	// Offset is the byte offset in the image where the defect was found, or -1.
	Offset int64
	// Detail says what was wrong, e.g. "grain 3: marker LBA 0, want 384".
	Detail string
}

// Error returns "vmdk: <detail> (at offset N)".
func (e *FormatError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("vmdk: %s (at offset %d)", e.Detail, e.Offset)
	}
	return "vmdk: " + e.Detail
}

// Unwrap lets errors.Is match both the kind and ErrInvalid.
func (e *FormatError) Unwrap() []error { return []error{e.Kind, ErrInvalid} }

func formatErr(kind error, off int64, format string, args ...any) error {
	return &FormatError{Kind: kind, Offset: off, Detail: fmt.Sprintf(format, args...)}
}

// ErrSizeExceeded is returned by Write when the image would be larger than
// Options.PadTo, the size promised to the caller's consumer beforehand.
var ErrSizeExceeded = errors.New("vmdk: image larger than the announced size")
