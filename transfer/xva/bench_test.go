package xva

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// patternDisk is a synthetic raw disk read sequentially: every fourth 1 MiB
// chunk holds data, the rest is zero.
type patternDisk struct{ off, size int64 }

func (d *patternDisk) Read(p []byte) (int, error) {
	if d.off >= d.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), d.size-d.off, ChunkSize-d.off%ChunkSize))
	if (d.off/ChunkSize)%4 == 0 {
		for i := range p[:n] {
			p[i] = byte(d.off + int64(i) + 1)
		}
	} else {
		clear(p[:n])
	}
	d.off += int64(n)
	return n, nil
}

// BenchmarkWrite measures writing a 1 GiB disk (25% data) into an XVA, per
// compression; MB/s are relative to the virtual size.
func BenchmarkWrite(b *testing.B) {
	const size = 1 << 30
	for _, comp := range []Compression{None, Zstd} {
		b.Run(comp.String(), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				d := Disk{Ref: "Ref:1", Size: size, Data: &patternDisk{size: size}}
				if _, err := Write(context.Background(), io.Discard, []byte(testOVA), []Disk{d}, WriterOptions{Compression: comp}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRead measures reading back a 256 MiB disk from an uncompressed XVA.
func BenchmarkRead(b *testing.B) {
	const size = 256 << 20
	var x bytes.Buffer
	if _, err := Write(context.Background(), &x, []byte(testOVA), []Disk{{Ref: "Ref:1", Size: size, Data: &patternDisk{size: size}}}, WriterOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		if err := consume(x.Bytes(), ReaderOptions{}, size); err != nil {
			b.Fatal(err)
		}
	}
}
