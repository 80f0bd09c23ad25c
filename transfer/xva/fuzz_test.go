package xva

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes (sniffed as tar, gzip or zstd) to the
// reader. It must return errors, never panic, and keep memory bounded.
func FuzzReader(f *testing.F) {
	c := []byte("chunk data")
	ova := entry{"ova.xml", []byte(testOVA)}
	f.Add(tarOf(f, ova, entry{"Ref:1/00000000", c}, entry{"Ref:1/00000000.xxhash", xxh(c)},
		entry{"Ref:1/00000003", nil}, entry{"Ref:1/00000003.xxhash", xxh(nil)},
		entry{"Ref:1/00000005", c}, entry{"Ref:1/00000005.checksum", sha(c)},
		entry{"Ref:2/00000000", c}, entry{"Ref:2/00000000.xxhash", xxh(c)}))
	small := []testDisk{{"Ref:3", diskData(3000, 1, 0)}}
	f.Add(writeXVA(f, small, WriterOptions{}))
	f.Add(writeXVA(f, small, WriterOptions{Compression: Gzip}))
	f.Add(writeXVA(f, small, WriterOptions{Compression: Zstd}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), ReaderOptions{MaxOVAXMLSize: 1 << 20})
		if err != nil {
			return
		}
		defer r.Close()
		for i := 0; ; i++ {
			d, err := r.NextDisk()
			if err != nil {
				return
			}
			if i%2 == 1 {
				d.SetSize(10 << 20)
			}
			// A few bytes can announce terabytes of zeros: read a bounded prefix.
			n, err := io.CopyN(io.Discard, d.Raw(), 32<<20)
			if err != nil && !errors.Is(err, io.EOF) {
				return
			}
			if n > 32<<20 {
				t.Fatalf("read %d bytes", n)
			}
		}
	})
}
