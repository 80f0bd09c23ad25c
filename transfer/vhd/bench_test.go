package vhd

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

// sparseFile writes a 1 GiB sparse raw file (25% of the 2 MiB blocks hold
// data) for the side-by-side benchmarks against qemu-img.
func sparseFile(b *testing.B) string {
	b.Helper()
	const size = 1 << 30
	p := filepath.Join(b.TempDir(), "sparse.raw")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	disk := sparseDisk{size: size}
	buf := make([]byte, BlockSize)
	for off := int64(0); off < size; off += 4 * BlockSize {
		disk.ReadAt(buf, off)
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkFileToVHD and BenchmarkQemuImgConvert convert the same 1 GiB
// sparse raw file into a dynamic VHD file, ours and qemu-img's
// (`convert -O vpc -o subformat=dynamic,force_size=on`); compare their MB/s.
func BenchmarkFileToVHD(b *testing.B) {
	src := sparseFile(b)
	dst := filepath.Join(b.TempDir(), "out.vhd")
	b.SetBytes(1 << 30)
	for b.Loop() {
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		blocks, err := ScanBlocks(context.Background(), in, 1<<30)
		if err != nil {
			b.Fatal(err)
		}
		s, err := NewStream(Options{Size: 1 << 30}, blocks, ReaderAtSource(in, 1<<30, blocks))
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(dst)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.WriteTo(out); err != nil {
			b.Fatal(err)
		}
		out.Close()
		in.Close()
	}
}

func BenchmarkQemuImgConvert(b *testing.B) {
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		b.Fatal("qemu-img not found: install it with `apt-get install -y qemu-utils`")
	}
	src := sparseFile(b)
	dst := filepath.Join(b.TempDir(), "out.vhd")
	b.SetBytes(1 << 30)
	for b.Loop() {
		os.Remove(dst)
		if out, err := exec.Command(qemu, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", src, dst).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}
