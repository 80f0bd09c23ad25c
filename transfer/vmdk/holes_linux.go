package vmdk

import (
	"errors"
	"os"
	"syscall"
)

const seekData = 3 // SEEK_DATA

// nextData returns the offset of the first data byte of f at or after off
// (or a value past the end when there is none). ok is false when the file
// system cannot tell.
func nextData(f *os.File, off int64) (int64, bool) {
	data, err := f.Seek(off, seekData)
	if errors.Is(err, syscall.ENXIO) {
		return 1<<63 - 1, true
	}
	if err != nil {
		return 0, false
	}
	return data, true
}
