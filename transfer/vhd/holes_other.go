//go:build !linux

package vhd

import "os"

// dataBlocks reports that hole detection is not available on this system.
func dataBlocks(f *os.File, size, blockSize int64) ([]int64, bool) { return nil, false }
