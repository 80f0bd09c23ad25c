package vmdk

import (
	"errors"
	"fmt"
	"io"
	"os"
)

type readerAtSource struct {
	r    io.ReaderAt
	f    *os.File // r, when holes can be asked for
	size int64
	bs   int64
	next int64 // next block index
	buf  []byte
}

// ReaderAtSource yields the blocks of blockSize bytes (0 means
// DefaultBlockSize) of a raw disk of size bytes read from r that are not all
// zeros. When r is an *os.File on Linux, holes are skipped with SEEK_DATA
// without being read (this moves the file's offset, not ReadAt's data).
func ReaderAtSource(r io.ReaderAt, size, blockSize int64) BlockSource {
	if blockSize == 0 {
		blockSize = DefaultBlockSize
	}
	s := &readerAtSource{r: r, size: size, bs: blockSize}
	if f, ok := r.(*os.File); ok {
		s.f = f
	}
	return s
}

func (s *readerAtSource) Next() (int64, []byte, error) {
	if s.bs <= 0 {
		return 0, nil, fmt.Errorf("vmdk: block size %d is not positive", s.bs)
	}
	for s.next*s.bs < s.size {
		if s.f != nil {
			data, ok := nextData(s.f, s.next*s.bs)
			if ok {
				if data >= s.size {
					s.next = (s.size + s.bs - 1) / s.bs
					break
				}
				s.next = max(s.next, data/s.bs)
			} else {
				s.f = nil // the file system cannot tell: read everything
			}
		}
		idx := s.next
		s.next++
		off := idx * s.bs
		n := min(s.size-off, s.bs)
		if s.buf == nil {
			s.buf = make([]byte, s.bs)
		}
		m, err := s.r.ReadAt(s.buf[:n], off)
		if int64(m) == n {
			err = nil
		}
		if err != nil {
			return 0, nil, fmt.Errorf("vmdk: reading block %d: %w", idx, err)
		}
		if !isZero(s.buf[:n]) {
			return idx, s.buf[:n], nil
		}
	}
	return 0, nil, io.EOF
}

type readerSource struct {
	r    io.Reader
	size int64
	bs   int64
	off  int64
	buf  []byte
}

// ReaderSource yields the non-zero blocks of blockSize bytes (0 means
// DefaultBlockSize) of a raw disk of size bytes read sequentially from r. A
// stream shorter than size gives io.ErrUnexpectedEOF.
func ReaderSource(r io.Reader, size, blockSize int64) BlockSource {
	if blockSize == 0 {
		blockSize = DefaultBlockSize
	}
	return &readerSource{r: r, size: size, bs: blockSize}
}

func (s *readerSource) Next() (int64, []byte, error) {
	if s.bs <= 0 {
		return 0, nil, fmt.Errorf("vmdk: block size %d is not positive", s.bs)
	}
	if s.buf == nil {
		s.buf = make([]byte, s.bs)
	}
	for s.off < s.size {
		n := min(s.size-s.off, s.bs)
		if _, err := io.ReadFull(s.r, s.buf[:n]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, fmt.Errorf("vmdk: reading raw data at offset %d: %w", s.off, err)
		}
		idx := s.off / s.bs
		s.off += n
		if !isZero(s.buf[:n]) {
			return idx, s.buf[:n], nil
		}
	}
	return 0, nil, io.EOF
}
