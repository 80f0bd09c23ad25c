package vhd

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
)

// sparseDisk is a synthetic raw disk: every fourth 2 MiB block holds data,
// the rest reads as zeros. It implements io.ReaderAt without storing the disk.
type sparseDisk struct{ size int64 }

func (d sparseDisk) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) && off < d.size {
		blk := off / BlockSize
		end := min((blk+1)*BlockSize, d.size, off+int64(len(p)-n))
		seg := p[n : n+int(end-off)]
		if blk%4 == 0 {
			for i := range seg {
				seg[i] = byte(off + int64(i) + 1)
			}
			binary.LittleEndian.PutUint64(seg[:min(8, len(seg))], uint64(blk))
		} else {
			clear(seg)
		}
		n += len(seg)
		off = end
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// BenchmarkStream measures VHD generation from a 1 GiB sparse-ish raw source
// (25% of the blocks allocated): allocation scan plus streaming to io.Discard.
// The MB/s figure is relative to the 1 GiB virtual size.
func BenchmarkStream(b *testing.B) {
	const size = 1 << 30
	disk := sparseDisk{size: size}
	b.SetBytes(size)
	for b.Loop() {
		blocks, err := ScanBlocks(context.Background(), disk, size)
		if err != nil {
			b.Fatal(err)
		}
		s, err := NewStream(Options{Size: size}, blocks, ReaderAtSource(disk, size, blocks))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamKnownBlocks measures generation alone when the caller
// already knows the allocated blocks (no scan).
func BenchmarkStreamKnownBlocks(b *testing.B) {
	const size = 1 << 30
	disk := sparseDisk{size: size}
	blocks, err := ScanBlocks(context.Background(), disk, size)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		s, err := NewStream(Options{Size: size}, blocks, ReaderAtSource(disk, size, blocks))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReader measures parsing a VHD stream back into raw blocks.
func BenchmarkReader(b *testing.B) {
	const size = 256 << 20
	disk := sparseDisk{size: size}
	blocks, _ := ScanBlocks(context.Background(), disk, size)
	s, _ := NewStream(Options{Size: size}, blocks, ReaderAtSource(disk, size, blocks))
	img, _ := io.ReadAll(s)
	b.SetBytes(size)
	for b.Loop() {
		r, err := NewReader(&byteStream{b: img})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r.Raw()); err != nil {
			b.Fatal(err)
		}
	}
}

type byteStream struct{ b []byte }

func (s *byteStream) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
