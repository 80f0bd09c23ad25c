package vhd

import (
	"errors"
	"os"
	"syscall"
)

// Linux lseek whence values for sparse files.
const (
	seekData = 3 // SEEK_DATA
	seekHole = 4 // SEEK_HOLE
)

// dataBlocks returns, for a file, the indices of the blocks of [0, size)
// that overlap a data extent (SEEK_DATA/SEEK_HOLE), so that holes are not
// read. ok is false when the file system cannot tell.
func dataBlocks(f *os.File, size, blockSize int64) (blocks []int64, ok bool) {
	next := int64(0) // first block not yet listed
	for off := int64(0); off < size; {
		data, err := f.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			break // no data after off
		}
		if err != nil {
			return nil, false
		}
		if data >= size {
			break
		}
		hole, err := f.Seek(data, seekHole)
		if err != nil {
			return nil, false
		}
		hole = min(hole, size)
		for b := max(data/blockSize, next); b*blockSize < hole; b++ {
			blocks = append(blocks, b)
			next = b + 1
		}
		off = hole
	}
	return blocks, true
}
